package dht

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"
	"golang.org/x/time/rate"
)

// startNodeWithID starts a node whose id is id, by way of a nodes file that records it.
func startNodeWithID(t *testing.T, id krpc.ID, cfg Config) *Node {
	t.Helper()
	cfg.NodesFile = filepath.Join(t.TempDir(), "nodes")
	if err := writeNodesFile(cfg.NodesFile, nodesFile{Self: id}); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg)
	if n.ID() != id {
		t.Fatalf("node id %x, want %x", n.ID(), id)
	}
	return n
}

// TestFindNodeHandsOutNearestGood places a joiner where the library's find_node answer cannot see
// it (its id shares the bootstrap node's leading 1 bit) and checks that the next joiner learns of it.
func TestFindNodeHandsOutNearestGood(t *testing.T) {
	boot := startNodeWithID(t, krpc.ID{0x80, 19: 1}, Config{First: true})
	if err := boot.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	near := startNodeWithID(t, krpc.ID{0x80, 0x01, 19: 2}, Config{Bootstrap: []netip.AddrPort{boot.Addr()}})
	if err := near.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(testQueryTimeout, func() bool { return boot.responders.good(near.Addr()) }) {
		t.Fatal("bootstrap node never heard back from the joiner")
	}
	far := startNodeWithID(t, krpc.ID{0x00, 19: 3}, Config{Bootstrap: []netip.AddrPort{boot.Addr()}})
	if err := far.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	res := far.srv.FindNode(dht.NewAddr(udpAddr(boot.Addr())), int160.FromByteArray(krpc.ID{0x80, 0x01, 19: 9}), dht.QueryRateLimiting{})
	if res.Err != nil || res.Reply.R == nil {
		t.Fatalf("find_node: %v", res.ToError())
	}
	var got []netip.AddrPort
	for _, ni := range res.Reply.R.Nodes {
		ap, _ := nodeInfoAddr(ni)
		got = append(got, ap)
	}
	if !slices.Equal(got, []netip.AddrPort{near.Addr()}) {
		t.Errorf("find_node answer = %v, want [%v]", got, near.Addr())
	}
	if far.Stats().GoodNodes < 2 {
		t.Errorf("the second joiner knows %d good nodes, want the bootstrap node and the first joiner", far.Stats().GoodNodes)
	}
}

// TestLibraryFindNodeIgnoresTarget documents why we answer find_node ourselves: the library's
// answer, from a node that knows one good node, is empty even for a target next to that node.
func TestLibraryFindNodeIgnoresTarget(t *testing.T) {
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
	res := far.FindNode(dht.NewAddr(bootAddr), int160.FromByteArray(krpc.ID{0x80, 0x01, 19: 9}), dht.QueryRateLimiting{})
	if res.Err != nil || res.Reply.R == nil {
		t.Fatalf("find_node: %v", res.ToError())
	}
	if len(res.Reply.R.Nodes) != 0 {
		t.Fatalf("the library's find_node answer finds the node now (%v): reconsider answerFindNode", res.Reply.R.Nodes)
	}
}

func TestClosestNodesByXORDistance(t *testing.T) {
	var nodes []krpc.NodeInfo
	for _, b := range []byte{0xff, 0x01, 0x80, 0x03, 0x02, 0x40} {
		nodes = append(nodes, testNodeInfo(b, "10.0.0.1:"+string('0'+rune(b%10))+"1"))
	}
	got := closestNodes(nodes, krpc.ID{0x03, 19: 0x03}, 3, func(krpc.NodeInfo) bool { return true })
	var ids []byte
	for _, ni := range got {
		ids = append(ids, ni.ID[0])
	}
	if !slices.Equal(ids, []byte{0x03, 0x02, 0x01}) {
		t.Errorf("closest to 03..03: %x, want 030201", ids)
	}
	if got := closestNodes(nodes, krpc.ID{}, 3, func(ni krpc.NodeInfo) bool { return ni.ID[0] >= 0x80 }); len(got) != 2 {
		t.Errorf("filter: %d nodes, want 2", len(got))
	}
}
