package dht

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// fakeClock is a settable clock for stores.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func na(s string) krpc.NodeAddr {
	ap := netip.MustParseAddrPort(s)
	return krpc.NodeAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
}

func peerStrings(nas []krpc.NodeAddr) []string {
	var out []string
	for _, a := range nas {
		ap, _ := peerAddr(a)
		out = append(out, ap.String())
	}
	slices.Sort(out)
	return out
}

func TestPeerStoreKeysByIPAndPort(t *testing.T) {
	ps := newPeerStore(PeerStoreConfig{}, newFakeClock().now)
	ih := peer_store.InfoHash{1}
	ps.AddPeer(ih, na("127.0.0.1:1000"))
	ps.AddPeer(ih, na("127.0.0.1:2000"))                                    // same IP, another port
	ps.AddPeer(ih, krpc.NodeAddr{IP: net.ParseIP("127.0.0.1"), Port: 1000}) // 16-byte form of the first
	ps.AddPeer(peer_store.InfoHash{2}, na("[2001:db8::1]:3000"))            // another infohash
	got := peerStrings(ps.GetPeers(ih))
	want := []string{"127.0.0.1:1000", "127.0.0.1:2000"}
	if !slices.Equal(got, want) {
		t.Errorf("GetPeers = %v, want %v", got, want)
	}
	if got := peerStrings(ps.GetPeers(peer_store.InfoHash{2})); !slices.Equal(got, []string{"[2001:db8::1]:3000"}) {
		t.Errorf("GetPeers(other) = %v", got)
	}
	if ps.Len() != 3 {
		t.Errorf("Len = %d, want 3", ps.Len())
	}
}

func TestPeerStoreIgnoresUnusableAddresses(t *testing.T) {
	ps := newPeerStore(PeerStoreConfig{}, newFakeClock().now)
	ih := peer_store.InfoHash{1}
	for _, a := range []krpc.NodeAddr{
		{IP: net.IPv4(1, 2, 3, 4), Port: 0},
		{IP: net.IPv4(1, 2, 3, 4), Port: -1},
		{IP: net.IPv4(1, 2, 3, 4), Port: 70000},
		{IP: net.IPv4zero, Port: 80},
		{IP: net.IP{1, 2, 3}, Port: 80},
		{IP: net.IPv4(224, 0, 0, 1), Port: 80},
	} {
		ps.AddPeer(ih, a)
	}
	if got := ps.GetPeers(ih); len(got) != 0 {
		t.Errorf("stored unusable addresses: %v", got)
	}
}

func TestPeerStoreExpires(t *testing.T) {
	clock := newFakeClock()
	ps := newPeerStore(PeerStoreConfig{TTL: 30 * time.Minute}, clock.now)
	ih := peer_store.InfoHash{1}
	ps.AddPeer(ih, na("10.0.0.1:1"))
	clock.advance(20 * time.Minute)
	ps.AddPeer(ih, na("10.0.0.2:1"))
	clock.advance(11 * time.Minute)
	if got := peerStrings(ps.GetPeers(ih)); !slices.Equal(got, []string{"10.0.0.2:1"}) {
		t.Errorf("after 31 min: %v, want only the later peer", got)
	}
	ps.AddPeer(ih, na("10.0.0.2:1")) // re-announce refreshes
	clock.advance(29 * time.Minute)
	if got := ps.GetPeers(ih); len(got) != 1 {
		t.Errorf("refreshed peer expired early: %v", got)
	}
	clock.advance(time.Minute)
	if got := ps.GetPeers(ih); len(got) != 0 || ps.Len() != 0 {
		t.Errorf("peer outlived its TTL: %v", got)
	}
}

func TestPeerStoreBoundsEvictOldest(t *testing.T) {
	clock := newFakeClock()
	ps := newPeerStore(PeerStoreConfig{MaxPerInfohash: 2, MaxTotal: 3}, clock.now)
	a, b := peer_store.InfoHash{1}, peer_store.InfoHash{2}
	ps.AddPeer(a, na("10.0.0.1:1"))
	clock.advance(time.Second)
	ps.AddPeer(a, na("10.0.0.2:1"))
	clock.advance(time.Second)
	ps.AddPeer(a, na("10.0.0.1:1")) // refresh: now 10.0.0.2 is the oldest of a
	clock.advance(time.Second)
	ps.AddPeer(a, na("10.0.0.3:1")) // a is full: 10.0.0.2 goes
	if got := peerStrings(ps.GetPeers(a)); !slices.Equal(got, []string{"10.0.0.1:1", "10.0.0.3:1"}) {
		t.Errorf("per-infohash bound: %v", got)
	}
	clock.advance(time.Second)
	ps.AddPeer(b, na("10.0.0.4:1"))
	clock.advance(time.Second)
	ps.AddPeer(b, na("10.0.0.5:1")) // total is full: the oldest of all, 10.0.0.1 in a, goes
	if got := peerStrings(ps.GetPeers(a)); !slices.Equal(got, []string{"10.0.0.3:1"}) {
		t.Errorf("total bound, infohash a: %v", got)
	}
	if got := peerStrings(ps.GetPeers(b)); !slices.Equal(got, []string{"10.0.0.4:1", "10.0.0.5:1"}) {
		t.Errorf("total bound, infohash b: %v", got)
	}
	if ps.Len() != 3 {
		t.Errorf("Len = %d, want 3", ps.Len())
	}
}

func TestPeerStoreReplySamplesLargeSwarms(t *testing.T) {
	ps := newPeerStore(PeerStoreConfig{MaxReply: 10}, newFakeClock().now)
	ih := peer_store.InfoHash{1}
	for i := range 100 {
		ps.AddPeer(ih, krpc.NodeAddr{IP: net.IPv4(10, 0, 0, byte(i)), Port: 1})
	}
	seen := make(map[string]bool)
	for range 50 {
		got := ps.GetPeers(ih)
		if len(got) != 10 {
			t.Fatalf("reply of %d peers, want 10", len(got))
		}
		for _, s := range peerStrings(got) {
			seen[s] = true
		}
	}
	if len(seen) < 90 {
		t.Errorf("50 replies of 10 covered only %d of 100 peers; sampling is not random", len(seen))
	}
}

// TestLibraryInMemoryPeerStoreIsBroken documents why we have our own store: if the library's ever
// returns what was added, the workaround can go.
func TestLibraryInMemoryPeerStoreIsBroken(t *testing.T) {
	var lib peer_store.InMemory
	ih := peer_store.InfoHash{1}
	lib.AddPeer(ih, na("127.0.0.1:1000"))
	lib.AddPeer(ih, na("127.0.0.1:2000"))
	got := lib.GetPeers(ih)
	for _, a := range got {
		if a.Equal(na("127.0.0.1:1000")) || a.Equal(na("127.0.0.1:2000")) {
			t.Fatalf("the library's in-memory peer store works now (%v): reconsider peerStore", got)
		}
	}
}
