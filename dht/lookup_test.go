package dht

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"golang.org/x/time/rate"
)

// TestLibraryGetNodesIgnoreTarget documents why lookups walk with find_node and ask get only of the
// nearest nodes: the library's get answer, from a node that knows one good node, names no one even
// for a target next to that node (it aims at the info_hash, which get does not carry).
func TestLibraryGetNodesIgnoreTarget(t *testing.T) {
	start := func(id krpc.ID) (*dht.Server, *net.UDPAddr) {
		pc := listenLoopback(t)
		s, err := dht.NewServer(&dht.ServerConfig{
			Conn: pc, NodeId: id, SendLimiter: rate.NewLimiter(1000, 100),
			StartingNodes:    func() ([]dht.Addr, error) { return nil, nil },
			QueryResendDelay: func() time.Duration { return testQueryTimeout },
			Logger:           libraryLogger(testLogger(t)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s, pc.LocalAddr().(*net.UDPAddr)
	}
	boot, bootAddr := start(krpc.ID{0x80, 19: 1})
	near, nearAddr := start(krpc.ID{0x80, 0x01, 19: 2})
	far, _ := start(krpc.ID{0x00, 19: 3})
	near.Ping(bootAddr)
	boot.Ping(nearAddr) // now near is good at boot
	if boot.Stats().GoodNodes != 1 {
		t.Fatalf("boot has %d good nodes, want 1", boot.Stats().GoodNodes)
	}
	target := bep44.Target(krpc.ID{0x80, 0x01, 19: 9})
	res := far.Get(t.Context(), dht.NewAddr(bootAddr), target, nil, dht.QueryRateLimiting{})
	if res.Err != nil || res.Reply.R == nil {
		t.Fatalf("get: %v", res.ToError())
	}
	if len(res.Reply.R.Nodes) != 0 {
		t.Fatalf("the library's get answer names the node now (%v): a traversal of get queries may do again", res.Reply.R.Nodes)
	}
}

// TestLookupEndsOnNearestNodes checks that a lookup ends on the nodes nearest its target, nearest
// first.
func TestLookupEndsOnNearestNodes(t *testing.T) {
	nodes := startNetwork(t, 40)
	// The first joiners met a network of a few nodes, and few nodes have met them. Their table
	// maintainers put that right within a minute; a second bootstrap does it at once.
	var wg sync.WaitGroup
	for _, n := range nodes[1:] {
		wg.Go(func() {
			if err := n.Bootstrap(testContext(t)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	asker, others := nodes[1], slices.Concat(nodes[:1], nodes[2:])
	for range 10 {
		target := krpc.RandomNodeID()
		got, err := asker.nearest(testContext(t), target)
		if err != nil {
			t.Fatal(err)
		}
		ranks := ranksFrom(others, target)
		byRank := make(map[int]*Node)
		for n, r := range ranks {
			byRank[r] = n
		}
		var want, have []netip.AddrPort
		for r := range lookupK {
			want = append(want, byRank[r].Addr())
		}
		for _, ni := range got {
			ap, _ := nodeInfoAddr(ni)
			have = append(have, ap)
		}
		if !slices.Equal(have, want) {
			t.Errorf("lookup of %x ended on %v, want the nearest %v", target, have, want)
		}
	}
}
