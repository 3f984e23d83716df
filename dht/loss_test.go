package dht

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// lossyConn is a loopback socket that loses a share of the datagrams sent to it, as a lossy link
// does, or a host too busy to answer within the query timeout.
type lossyConn struct {
	loopbackConn
	perMille atomic.Int32 // datagrams lost in every thousand received
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.loopbackConn.ReadFrom(b)
		if err != nil || rand.IntN(1000) >= int(c.perMille.Load()) {
			return n, addr, err
		}
	}
}

// TestLookupsSurviveLoss loses one datagram in five, queries and answers alike, once a DHT of 40
// nodes has formed; then items are published and announces made, and a node that joins under that
// loss fetches every item and finds every peer. It is the mechanism behind TestPublishFetchAtScale's
// rare misses on a busy host (where answers come later than the query timeout), without the host.
// When the library sent each query once, a lost datagram cost a node for a whole operation: a fresh
// node whose bootstrap walk went unanswered kept a table of one node and failed every lookup whose
// one find_node was lost, and a fetch whose gets to the item's holders went unanswered reported the
// item missing. Without resends, every run of this test failed (in publishing, announcing,
// fetching or finding peers).
func TestLookupsSurviveLoss(t *testing.T) {
	const size, items, announcers, loss = 40, 30, 10, 200
	var conns []*lossyConn
	start := func(t *testing.T, cfg Config) *Node {
		c := &lossyConn{loopbackConn: listenLoopback(t)}
		conns = append(conns, c)
		cfg.Conn = c
		return startNode(t, cfg)
	}
	nodes := startNetworkSizedWith(t, size, start)
	first := nodes[0]
	// Like a network's genesis file, the fresh node names several bootstrap nodes: with one, a
	// loss this heavy would leave it unable to join now and then (both its pings lost), and the
	// test would be about Bootstrap's error rather than about lookups.
	fresh := start(t, Config{Bootstrap: []netip.AddrPort{first.Addr(), nodes[1].Addr(), nodes[2].Addr()}})
	for _, c := range conns {
		c.perMille.Store(loss)
	}

	salt := []byte("loss")
	keys := make([]ed25519.PrivateKey, items)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
	}
	ih := NetworkInfohash([32]byte{4})
	var wg sync.WaitGroup
	for i := range max(items, announcers) {
		wg.Go(func() {
			n := nodes[1+i%(len(nodes)-1)]
			if i < items {
				if err := n.Publish(testContext(t), keys[i], salt, 1, fmt.Appendf(nil, "item %d", i)); err != nil {
					t.Errorf("Publish item %d: %v", i, err)
				}
			}
			if i < announcers {
				if err := n.Announce(testContext(t), ih, 30000+i); err != nil {
					t.Errorf("Announce %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()

	if err := fresh.Bootstrap(testContext(t)); err != nil {
		t.Fatalf("fresh node Bootstrap: %v", err)
	}
	var mu sync.Mutex
	var missing []int
	for i := range items {
		wg.Go(func() {
			v, seq, err := fresh.Fetch(testContext(t), keys[i].Public().(ed25519.PublicKey), salt)
			if err != nil || seq != 1 || string(v) != fmt.Sprintf("item %d", i) {
				mu.Lock()
				missing = append(missing, i)
				mu.Unlock()
				t.Logf("Fetch item %d = %q, %d, %v", i, v, seq, err)
			}
		})
	}
	wg.Wait()
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("with %d‰ of datagrams lost, a fresh node fetched %d of %d items; missing %v", loss, items-len(missing), items, missing)
	}
	got, err := fresh.FindPeers(testContext(t), ih)
	if err != nil {
		t.Fatalf("FindPeers: %v", err)
	}
	if len(got) != announcers {
		t.Errorf("with %d‰ of datagrams lost, a fresh node found %d of %d announced peers", loss, len(got), announcers)
	}
}
