package dht

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
)

// ranksFrom returns, for each node, its rank (0 = nearest) by XOR distance from target among nodes.
func ranksFrom(nodes []*Node, target [20]byte) map[*Node]int {
	sorted := slices.Clone(nodes)
	t := krpc.ID(target).Int160()
	slices.SortFunc(sorted, func(a, b *Node) int {
		return krpc.ID(a.ID()).Int160().Distance(t).Cmp(krpc.ID(b.ID()).Int160().Distance(t))
	})
	ranks := make(map[*Node]int, len(sorted))
	for i, n := range sorted {
		ranks[n] = i
	}
	return ranks
}

// TestPublishFetchAtScale runs a DHT of a few hundred nodes, publishes items from many of them at
// once, and fetches every item from a node that joined afterwards. In a network this size lookups
// no longer start from a table that holds nearly everyone, so they depend on the node lists in
// answers: those of the library's get and get_peers aim at the wrong target (or carry none), and
// items landed on nodes that later lookups never reached. More peers announce than one get_peers
// answer carries (50), so FindPeers must gather several samples from the nearest nodes.
func TestPublishFetchAtScale(t *testing.T) {
	size, items, announcers := 250, 50, 150
	if testing.Short() || raceEnabled {
		size, items, announcers = 150, 50, 120
	}
	start := time.Now()
	nodes := startNetworkSized(t, size)
	booted := time.Since(start)

	salt := make([]byte, 32)
	salt[0] = 7
	keys := make([]ed25519.PrivateKey, items)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
	}
	ih := NetworkInfohash([32]byte{3})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range max(items, announcers) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n := nodes[1+i%(len(nodes)-1)]
			if i < items {
				if err := n.Publish(testContext(t), keys[i], salt, 1, fmt.Appendf(nil, "item %d", i)); err != nil {
					t.Errorf("Publish item %d: %v", i, err)
				}
			}
			if i < announcers {
				if err := n.Announce(testContext(t), ih, 20000+i); err != nil {
					t.Errorf("Announce %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	published := time.Since(start)

	// Where did the items land, against the nodes nearest their targets?
	var nearestHolds, top8Holds, held int
	for i := range items {
		pub := [32]byte(keys[i].Public().(ed25519.PublicKey))
		target := bep44.MakeMutableTarget(pub, salt)
		ranks := ranksFrom(nodes, target)
		var holders []int
		for _, n := range nodes {
			if _, ok := n.localItem(target, pub, salt); ok {
				holders = append(holders, ranks[n])
			}
		}
		slices.Sort(holders)
		held += len(holders)
		for _, r := range holders {
			if r < 8 {
				top8Holds++
			}
			if r == 0 {
				nearestHolds++
			}
		}
		if testing.Verbose() && i < 5 {
			t.Logf("item %d held at ranks %v", i, holders)
		}
	}
	t.Logf("items: %.1f copies each, %.1f of them on the 8 nearest nodes; the nearest node holds %d of %d",
		float64(held)/float64(items), float64(top8Holds)/float64(items), nearestHolds, items)
	if top8Holds < 6*items {
		t.Errorf("%.1f copies of an item on the 8 nodes nearest it, want nearly 8", float64(top8Holds)/float64(items))
	}

	fresh := startNode(t, Config{Bootstrap: []netip.AddrPort{nodes[0].Addr()}})
	if err := fresh.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	before := fresh.Stats()
	var missing []int
	var mu sync.Mutex
	for i := range items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			v, seq, err := fresh.Fetch(testContext(t), keys[i].Public().(ed25519.PublicKey), salt)
			if err != nil || seq != 1 || string(v) != fmt.Sprintf("item %d", i) {
				mu.Lock()
				missing = append(missing, i)
				mu.Unlock()
				if testing.Verbose() {
					t.Logf("Fetch item %d = %q, %d, %v", i, v, seq, err)
				}
			}
		})
	}
	wg.Wait()
	fetched := time.Since(start)
	after := fresh.Stats()
	t.Logf("a fetch sent %.1f queries: %.1f find_node, %.1f get",
		float64(after.QueriesOut-before.QueriesOut)/float64(items), float64(after.FindNodesOut-before.FindNodesOut)/float64(items), float64(after.GetsOut-before.GetsOut)/float64(items))
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("a fresh node fetched %d of %d items; missing %v", items-len(missing), items, missing)
	}

	before = fresh.Stats()
	got, err := fresh.FindPeers(testContext(t), ih)
	if err != nil {
		t.Fatalf("FindPeers: %v", err)
	}
	t.Logf("FindPeers sent %d queries", fresh.Stats().QueriesOut-before.QueriesOut)
	if len(got) != announcers {
		t.Errorf("a fresh node found %d of %d announced peers", len(got), announcers)
	}
	t.Logf("%d nodes: bootstrapped in %v, %d items published and %d announces by %v, fetched by %v",
		size, booted.Round(time.Millisecond), items, announcers, published.Round(time.Millisecond), fetched.Round(time.Millisecond))
}

// startNetworkSized starts a network of hundreds of nodes: a first node, a first wave of joiners
// bootstrapped from it, and the rest from it and one of the first wave (as a network's genesis
// names several bootstrap nodes), with bounded concurrency.
func startNetworkSized(t *testing.T, size int) []*Node {
	t.Helper()
	return startNetworkSizedWith(t, size, startNode)
}

// startNetworkSizedWith is startNetworkSized with nodes started by startNode.
func startNetworkSizedWith(t *testing.T, size int, startNode func(*testing.T, Config) *Node) []*Node {
	t.Helper()
	first := startNode(t, Config{First: true})
	if err := first.Bootstrap(testContext(t)); err != nil {
		t.Fatalf("first node Bootstrap: %v", err)
	}
	const wave = 16
	nodes := []*Node{first}
	for i := range size - 1 {
		boot := []netip.AddrPort{first.Addr()}
		if i >= wave {
			boot = append(boot, nodes[1+i%wave].Addr())
		}
		nodes = append(nodes, startNode(t, Config{Bootstrap: boot}))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, part := range [][]*Node{nodes[1:min(1+wave, size)], nodes[min(1+wave, size):]} {
		for _, n := range part {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := n.Bootstrap(testContext(t)); err != nil {
					t.Errorf("node %v Bootstrap: %v", n.Addr(), err)
				}
			})
		}
		wg.Wait()
	}
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}
