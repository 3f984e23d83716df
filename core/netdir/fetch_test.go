package netdir

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

var now = time.Now().UTC().Truncate(time.Second)

// authority is a fake discovery authority: an HTTP server with documents by serial and a bundle.
type authority struct {
	id     *keys.Identity
	srv    *httptest.Server
	mu     sync.Mutex
	docs   map[uint64][]byte
	latest uint64
	bundle []byte
	// onBundle, if set, runs (under mu) before a bundle is served, once.
	onBundle func()
}

func (a *authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case r.URL.Path == directory.PathDirectory:
		w.Write(a.docs[a.latest])
	case strings.HasPrefix(r.URL.Path, directory.PathDirectory+"/"):
		var s uint64
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, directory.PathDirectory+"/"), &s)
		if b, ok := a.docs[s]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	case r.URL.Path == directory.PathDescriptors:
		if f := a.onBundle; f != nil {
			a.onBundle = nil
			f()
		}
		w.Write(a.bundle)
	default:
		http.NotFound(w, r)
	}
}

type testNet struct {
	g     *genesis.Genesis
	auths []*authority
	descs [][]byte
	ids   []*keys.Identity
}

func newTestNet(t *testing.T, relays int) *testNet {
	t.Helper()
	n := &testNet{g: &genesis.Genesis{Name: "test", Threshold: 2, Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6881")}}}
	n.g.NetworkID, _ = genesis.GenerateNetworkID(rand.Reader)
	for i := range relays {
		id, _ := keys.GenerateIdentity(rand.Reader)
		ok, _ := keys.GenerateStatic(rand.Reader)
		lk, _ := keys.GenerateStatic(rand.Reader)
		d := &descriptor.Descriptor{
			NetworkID: n.g.NetworkID, OnionKey: ok.Public(), LinkKey: lk.Public(),
			ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(7 * 24 * time.Hour),
			Addresses: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000)},
			Published: now.Add(-time.Minute), Seq: 1, Software: "test",
		}
		if i%2 == 1 { // every other relay is behind a NAT, with two rendezvous
			for j := range 2 {
				rk, _ := keys.GenerateStatic(rand.Reader)
				d.Rendezvous = append(d.Rendezvous, descriptor.Rendezvous{LinkKey: rk.Public(),
					Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 1, byte(j + 1)}), 7000)})
			}
		}
		b, err := d.Sign(id)
		if err != nil {
			t.Fatal(err)
		}
		n.descs, n.ids = append(n.descs, b), append(n.ids, id)
	}
	for i := range 3 {
		id, _ := keys.GenerateIdentity(rand.Reader)
		a := &authority{id: id, docs: map[uint64][]byte{}}
		a.srv = httptest.NewServer(a)
		t.Cleanup(a.srv.Close)
		n.auths = append(n.auths, a)
		n.g.Authorities = append(n.g.Authorities, genesis.Authority{Identity: id.Public(), URL: a.srv.URL, Name: fmt.Sprintf("auth%d", i)})
		a.bundle, _ = directory.EncodeBundle(n.descs)
		n.publish(t, i, 1, n.descs)
	}
	return n
}

// publish makes authority i sign a document with serial listing descs (Running|Guard|Exit|Fast|Stable).
func (n *testNet) publish(t *testing.T, i int, serial uint64, descs [][]byte) {
	t.Helper()
	a := n.auths[i]
	d := &directory.Directory{NetworkID: n.g.NetworkID, Authority: a.id.Public(), Serial: serial,
		ValidAfter: now.Add(-time.Minute), ValidUntil: now.Add(time.Hour)}
	if serial > 1 {
		prev, _ := directory.Parse(a.docs[serial-1])
		d.Previous, _ = prev.Hash()
	}
	for _, raw := range descs {
		desc, _ := descriptor.Parse(raw)
		d.Entries = append(d.Entries, directory.Entry{Identity: desc.Identity, Descriptor: descriptor.Digest(raw),
			Flags: directory.Running | directory.Guard | directory.Exit | directory.Fast | directory.Stable, Weight: 100})
	}
	sortEntries(d.Entries)
	b, err := d.Sign(a.id)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.docs[serial], a.latest = b, serial
	a.mu.Unlock()
}

func sortEntries(es []directory.Entry) {
	for i := range es {
		for j := i + 1; j < len(es); j++ {
			if string(es[j].Identity[:]) < string(es[i].Identity[:]) {
				es[i], es[j] = es[j], es[i]
			}
		}
	}
}

func TestFetchAgreesWithAThreshold(t *testing.T) {
	n := newTestNet(t, 4)
	n.auths[2].srv.Close() // one authority is down: 2 of 3 still agree
	f, err := NewFetcher(n.g, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	net, err := f.Fetch(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if net.Len() != 4 || len(net.Problems()) == 0 || len(net.Sources()) != 2 || !net.FromDirectory() {
		t.Fatalf("%d relays, %d sources, problems %v", net.Len(), len(net.Sources()), net.Problems())
	}
	descs := make(map[keys.IdentityPublic]*descriptor.Descriptor)
	for _, raw := range n.descs {
		d, err := descriptor.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		descs[d.Identity] = d
	}
	natted := 0
	for _, r := range net.Relays() {
		d := descs[r.Identity]
		if d == nil || !r.Flags.Has(Running) || r.Onion != d.OnionKey || r.LinkKey != d.LinkKey {
			t.Fatalf("relay %+v", r)
		}
		if r.Addr != d.Addresses[0] {
			t.Fatalf("relay %s: address %v, descriptor %v", r, r.Addr, d.Addresses)
		}
		// A relay behind a NAT carries its rendezvous, in the descriptor's order.
		if len(d.Rendezvous) > 0 {
			natted++
		}
		if !slices.Equal(r.Rendezvous, d.Rendezvous) {
			t.Fatalf("relay %s: rendezvous %+v, want %+v", r, r.Rendezvous, d.Rendezvous)
		}
	}
	if natted != 2 {
		t.Fatalf("%d relays behind a NAT, want 2", natted)
	}
	n.auths[1].srv.Close() // now only one answers: below the threshold
	if _, err := f.Fetch(context.Background(), now); err == nil {
		t.Fatal("one authority of three made a consensus with threshold 2")
	}
}

func TestRelayOnlyOneAuthorityListsIsLeftOut(t *testing.T) {
	n := newTestNet(t, 4)
	n.publish(t, 0, 2, n.descs)     // authority 0 lists all four
	n.publish(t, 1, 2, n.descs[:3]) // the others only three
	n.publish(t, 2, 2, n.descs[:3])
	f, _ := NewFetcher(n.g, "", nil)
	net, err := f.Fetch(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if net.Len() != 3 {
		t.Fatalf("%d relays, want the 3 a threshold agrees on", net.Len())
	}
}

func TestTamperedDescriptorIsRefused(t *testing.T) {
	n := newTestNet(t, 3)
	// Every authority serves a bundle in which one descriptor has a flipped byte: its digest no longer
	// matches the consensus, so it is ignored, and that relay is left out.
	bad := append([]byte(nil), n.descs[0]...)
	bad[len(bad)-1] ^= 1
	for _, a := range n.auths {
		a.bundle, _ = directory.EncodeBundle([][]byte{bad, n.descs[1], n.descs[2]})
	}
	f, _ := NewFetcher(n.g, "", nil)
	net, err := f.Fetch(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if net.Len() != 2 {
		t.Fatalf("%d relays, want 2 (one descriptor was tampered with)", net.Len())
	}
}

func TestRollbackIsDetectedAcrossRestarts(t *testing.T) {
	n := newTestNet(t, 3)
	state := filepath.Join(t.TempDir(), "chain")
	for i := range n.auths {
		n.publish(t, i, 2, n.descs)
		n.publish(t, i, 3, n.descs)
	}
	f, _ := NewFetcher(n.g, state, nil)
	if _, err := f.Fetch(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	// Two authorities roll back to serial 2 (as a replaying attacker in the middle would): after a
	// restart the client still knows serial 3 and refuses them, leaving no threshold.
	for _, a := range n.auths[:2] {
		a.mu.Lock()
		a.latest = 2
		a.mu.Unlock()
	}
	f2, err := NewFetcher(n.g, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f2.Fetch(context.Background(), now)
	if err == nil || !errors.Is(err, directory.ErrRollback) && !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("rolled-back directories: %v", err)
	}
}

func TestChainWalksAGap(t *testing.T) {
	n := newTestNet(t, 3)
	f, _ := NewFetcher(n.g, "", nil)
	if _, err := f.Fetch(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for i := range n.auths {
		for s := uint64(2); s <= 5; s++ {
			n.publish(t, i, s, n.descs)
		}
	}
	if _, err := f.Fetch(context.Background(), now); err != nil {
		t.Fatalf("serial 1 → 5: %v", err)
	}
}

// A genesis file that is not the network's — other authority keys, or another network's id — makes
// every authority's answer one it does not vouch for: FetchUntil says so at once instead of retrying
// until its context ends. One stranger among three is only a problem.
func TestWrongGenesisFailsAtOnce(t *testing.T) {
	n := newTestNet(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	otherKeys := *n.g
	otherKeys.Authorities = append([]genesis.Authority(nil), n.g.Authorities...)
	for i := range otherKeys.Authorities {
		id, _ := keys.GenerateIdentity(rand.Reader)
		otherKeys.Authorities[i].Identity = id.Public()
	}
	otherNetwork := *n.g
	otherNetwork.NetworkID[0] ^= 1
	for name, g := range map[string]*genesis.Genesis{"other keys": &otherKeys, "other network": &otherNetwork} {
		f, err := NewFetcher(g, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.FetchUntil(ctx); !errors.Is(err, ErrWrongGenesis) || !strings.Contains(err.Error(), "is it the right genesis file?") {
			t.Fatalf("%s: %v, want ErrWrongGenesis", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("FetchUntil waited for its context")
	}

	oneStranger := *n.g
	oneStranger.Authorities = append([]genesis.Authority(nil), n.g.Authorities...)
	id, _ := keys.GenerateIdentity(rand.Reader)
	oneStranger.Authorities[2].Identity = id.Public()
	f, _ := NewFetcher(&oneStranger, "", nil)
	dir, err := f.Fetch(ctx, now)
	if err != nil || dir.Len() != 3 || len(dir.Problems()) == 0 {
		t.Fatalf("one authority of three not vouched for: %v (want the network, with a problem)", err)
	}
}

// Every authority publishes a new document — naming every relay's new descriptor — between the
// client's request for its document and its request for the descriptors: the descriptors served are
// not those the consensus names. The fetch is made again and gets the whole network.
func TestFetchAcrossARoundBoundary(t *testing.T) {
	n := newTestNet(t, 3)
	var newer [][]byte
	for i, raw := range n.descs {
		d, _ := descriptor.Parse(raw)
		d.Seq++
		b, err := d.Sign(n.ids[i])
		if err != nil {
			t.Fatal(err)
		}
		newer = append(newer, b)
	}
	bundle, _ := directory.EncodeBundle(newer)
	for _, a := range n.auths {
		a.onBundle = func() { // mu is held: publish's own locking is done here by hand
			for i, b := range n.auths {
				if b == a {
					a.mu.Unlock()
					n.publish(t, i, 2, newer)
					a.mu.Lock()
				}
			}
			a.bundle = bundle
		}
	}
	f, _ := NewFetcher(n.g, "", nil)
	dir, err := f.Fetch(context.Background(), now)
	if err != nil {
		t.Fatalf("fetch across a round boundary: %v (want the network: fetched again)", err)
	}
	if dir.Len() != 3 {
		t.Fatalf("fetch across a round boundary: %d relays, want 3 (fetched again)", dir.Len())
	}
}
