package authority

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// TestAuthority runs two authorities over a DHT of loopback nodes with real relays: they list the
// honest relays, refuse a forged descriptor and a reused seq, serve what clients check, notice a relay
// that goes silent within a period and drop it within three, and keep their chain across a restart.
func TestAuthority(t *testing.T) {
	n := newTestNet(t)
	honest := []*testRelay{n.addRelay(true, nil), n.addRelay(false, nil), n.addRelay(false, nil), n.addRelay(false, nil)}
	exit, silent := honest[0], honest[1]
	// A relay whose descriptor names it but is signed by another key.
	forged := n.addRelay(false, func(r *testRelay) []byte {
		other, _ := keys.GenerateIdentity(rand.Reader)
		d := r.desc
		raw, err := d.Sign(other)
		if err != nil {
			t.Fatal(err)
		}
		id := r.id.Public()
		copy(raw[33:65], id[:])
		return raw
	})
	// A relay that will later change its descriptor without raising its seq.
	reuser := n.addRelay(false, nil)
	good := append(honest[:len(honest):len(honest)], reuser)

	var keyring []*keys.Identity
	var ids []keys.IdentityPublic
	for range 2 {
		id, err := keys.GenerateIdentity(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keyring, ids = append(keyring, id), append(ids, id.Public())
	}
	gen := n.genesis(2, ids...)
	cfgs := []Config{
		n.authorityConfig(gen, keyring[0], filepath.Join(n.dir, "a0")),
		n.authorityConfig(gen, keyring[1], filepath.Join(n.dir, "a1")),
	}
	var auths []*Authority
	for _, cfg := range cfgs {
		a, err := Start(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		auths = append(auths, a)
	}
	a := auths[0]

	allRunning := func(a *Authority) func() bool {
		return func() bool {
			d, _ := a.Latest()
			if d == nil {
				return false
			}
			for _, r := range good {
				if e, ok := entry(d, r.id.Public()); !ok || e.Flags&directory.Running == 0 || e.Descriptor != r.digest() {
					return false
				}
			}
			return true
		}
	}
	for i, au := range auths {
		waitFor(t, 15*time.Second, fmt.Sprintf("authority %d lists every honest relay as Running", i), allRunning(au))
	}

	t.Run("refuses a forged descriptor", func(t *testing.T) {
		waitFor(t, 5*time.Second, "a refusal for the signature", func() bool { return a.Stats().Refused["signature"] > 0 })
		for _, au := range auths {
			if d, _ := au.Latest(); d != nil {
				if _, ok := entry(d, forged.id.Public()); ok {
					t.Fatal("the forged relay is listed")
				}
			}
		}
	})

	t.Run("serves what clients check", func(t *testing.T) {
		docs := []*directory.Directory{document(t, auths[0], 0), document(t, auths[1], 0)}
		for i, d := range docs {
			if d.Authority != ids[i] || d.NetworkID != n.networkID {
				t.Fatalf("document %d is by %s for %x", i, d.Authority, d.NetworkID)
			}
			if !d.ValidAt(time.Now()) {
				t.Fatalf("document %d is not valid now: [%v, %v)", i, d.ValidAfter, d.ValidUntil)
			}
		}
		cons, err := directory.Combine(n.networkID, ids, 2, docs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range good {
			cr, ok := cons.Lookup(r.id.Public())
			if !ok || cr.Descriptor != r.digest() || cr.Flags&directory.Running == 0 {
				t.Errorf("relay %s in the consensus: %v %+v", r.id.Public(), ok, cr)
			}
		}
		if cr, _ := cons.Lookup(exit.id.Public()); cr.Flags&directory.Exit == 0 {
			t.Errorf("the exit has flags %s", cr.Flags)
		}
		if cr, _ := cons.Lookup(honest[1].id.Public()); cr.Flags&directory.Exit != 0 {
			t.Errorf("a non-exit has flags %s", cr.Flags)
		}
		if _, ok := cons.Lookup(forged.id.Public()); ok {
			t.Error("the forged relay is in the consensus")
		}

		// Every descriptor the consensus names is in the bundle, and checks.
		status, b := httpGet(t, base(a)+directory.PathDescriptors)
		if status != http.StatusOK {
			t.Fatalf("GET descriptors: %d", status)
		}
		items, err := directory.ParseBundle(b)
		if err != nil {
			t.Fatal(err)
		}
		inBundle := map[[32]byte]bool{}
		for _, raw := range items {
			d, err := descriptor.Parse(raw)
			if err == nil {
				err = d.Check(time.Now(), n.networkID)
			}
			if err != nil {
				t.Fatalf("a descriptor of the bundle: %v", err)
			}
			inBundle[descriptor.Digest(raw)] = true
		}
		for _, r := range cons.Relays {
			if !inBundle[r.Descriptor] {
				t.Errorf("relay %s: its descriptor is not in the bundle", r.Identity)
			}
		}

		// The chain: the previous document is served and is the one named.
		d := docs[0]
		if d.Serial < 2 {
			waitFor(t, 5*time.Second, "a second document", func() bool { return latestSerial(a) >= 2 })
			d = document(t, a, 0)
		}
		prev := document(t, a, d.Serial-1)
		if h, _ := prev.Hash(); h != d.Previous {
			t.Fatalf("document %d names %x as previous, document %d hashes to %x", d.Serial, d.Previous, prev.Serial, h)
		}
		for path, want := range map[string]int{
			directory.PathDirectory + "/0": http.StatusBadRequest, directory.PathDirectory + "/x": http.StatusBadRequest,
			directory.PathDirectory + "/999999": http.StatusNotFound, "/v1/other": http.StatusNotFound,
		} {
			if status, _ := httpGet(t, base(a)+path); status != want {
				t.Errorf("GET %s: %d, want %d", path, status, want)
			}
		}
		// Without the genesis URL's path, nothing is served.
		if status, _ := httpGet(t, "http://"+a.HTTPAddr().String()+directory.PathDirectory); status != http.StatusNotFound {
			t.Errorf("GET %s without the prefix: %d", directory.PathDirectory, status)
		}
	})

	t.Run("publishes a pointer on the DHT", func(t *testing.T) {
		var ptr Pointer
		waitFor(t, 10*time.Second, "the pointer on the DHT", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			v, seq, err := n.dhtNodes[1].Fetch(ctx, ed25519.PublicKey(ids[0][:]), DirectorySalt(n.networkID))
			if err != nil {
				return false
			}
			if ptr, err = ParsePointer(v); err != nil || int64(ptr.Serial) != seq {
				t.Fatalf("pointer %x with seq %d: %v", v, seq, err)
			}
			return true
		})
		if h, _ := document(t, a, ptr.Serial).Hash(); h != ptr.Hash {
			t.Fatalf("the pointer names %x for serial %d, which hashes to %x", ptr.Hash, ptr.Serial, h)
		}
	})

	// A relay goes silent, and another stops publishing so that its item expires and it can publish
	// other content under the same seq.
	silent.relay.Close()  // silent from here on: no whois answers, no circuits
	s0 := latestSerial(a) // the round after s0+1 starts after the relay stopped
	silent.close()
	before := reuser.digest()
	reuser.setDescriptor(nil, 0)
	t.Run("a relay that reuses its seq is refused", func(t *testing.T) {
		waitFor(t, 10*time.Second, "the reuser's item to expire from the DHT", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pub := reuser.id.Public()
			_, _, err := n.dhtNodes[2].Fetch(ctx, ed25519.PublicKey(pub[:]), descriptor.Salt(n.networkID))
			return errors.Is(err, dht.ErrNotFound)
		})
		changed := reuser.desc
		changed.Bandwidth++
		reuser.setDescriptor(reuser.sign(changed), changed.Seq)
		waitFor(t, 10*time.Second, "the same seq with other content published", func() bool { return reuser.published() == nil })
		after := reuser.digest()
		waitFor(t, 10*time.Second, "a refusal for the reused seq", func() bool { return a.Stats().Refused["seq_reused"] > 0 })
		for s := s0; s <= latestSerial(a); s++ {
			if e, ok := entry(document(t, a, s), reuser.id.Public()); ok && e.Descriptor != before {
				t.Fatalf("document %d lists the reuser with descriptor %x (the refused one is %x)", s, e.Descriptor, after)
			}
		}
	})

	t.Run("a silent relay is Degraded, then dropped", func(t *testing.T) {
		// The round in progress when the relay stopped may have probed it before. A probe of it fails
		// at its timeout (a second, a period here), and the round whose deadline comes after that
		// takes it in: the relay stops Running two or three rounds after s0. Its probes take longer
		// than a period, so another starts every round or every other round: it is dropped after
		// three failures, within eight rounds.
		const last = 8
		waitFor(t, 30*time.Second, fmt.Sprintf("%d more rounds", last), func() bool { return latestSerial(a) >= s0+last })
		var notRunning, dropped uint64
		for s := s0 + 1; s <= s0+last; s++ {
			d := document(t, a, s)
			e, ok := entry(d, silent.id.Public())
			switch {
			case notRunning == 0 && ok && e.Flags&directory.Running == 0:
				if e.Flags&directory.Degraded == 0 {
					t.Fatalf("document %d, the first with the silent relay not Running, lists it with flags %s; want Degraded", s, e.Flags)
				}
				notRunning = s
			case dropped == 0 && !ok:
				dropped = s
			}
			for _, r := range []*testRelay{honest[0], honest[2], honest[3]} {
				if _, ok := entry(d, r.id.Public()); !ok {
					t.Fatalf("document %d does not list the healthy relay %s", s, r.id.Public())
				}
			}
		}
		if notRunning == 0 || notRunning > s0+3 || dropped == 0 || dropped < notRunning {
			t.Fatalf("after the relay went silent (serial %d): not Running from document %d, dropped from %d; want Degraded by %d, dropped after it (%+v)", s0, notRunning, dropped, s0+3, a.Stats())
		}
	})

	t.Run("a restart continues the chain", func(t *testing.T) {
		first := document(t, a, 1)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		last, _ := a.Latest() // a round that was storing when Close began has finished

		b, err := Start(cfgs[0], testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if c, err := Start(cfgs[0], testLogger(t)); err == nil {
			c.Close()
			t.Fatal("a second authority started on the same data directory")
		} else if !strings.Contains(err.Error(), "in use") {
			t.Fatalf("a second authority on the same data directory: %v", err)
		}
		// It serves what it served before, and chains its next document to it.
		lastHash, _ := last.Hash()
		if h, _ := document(t, b, last.Serial).Hash(); h != lastHash {
			t.Fatalf("restarted with another document %d", last.Serial)
		}
		waitFor(t, 5*time.Second, "a document after the restart", func() bool { return latestSerial(b) > last.Serial })
		next := document(t, b, last.Serial+1)
		if next.Previous != lastHash {
			t.Fatalf("document %d after the restart names %x as previous, want %x", next.Serial, next.Previous, lastHash)
		}
		chain := directory.NewChain(n.networkID)
		if err := chain.Advance(first, nil); err != nil {
			t.Fatal(err)
		}
		newest := document(t, b, 0)
		previous := func(serial uint64) (*directory.Directory, error) { return document(t, b, serial), nil }
		if err := chain.Advance(newest, previous); err != nil {
			t.Fatalf("walking the chain from 1 to %d: %v", newest.Serial, err)
		}
		// The relays known for longer than stable_age with clean probes are Stable, and the fastest Guard.
		var stable, guard bool
		for _, e := range newest.Entries {
			stable = stable || e.Flags&directory.Stable != 0
			guard = guard || e.Flags&directory.Guard != 0
		}
		if !stable || !guard {
			t.Errorf("no Stable (%v) or no Guard (%v) relay in %+v", stable, guard, newest.Entries)
		}
	})
}
