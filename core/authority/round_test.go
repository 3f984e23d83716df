package authority

import (
	"context"
	"crypto/rand"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// fakeNet stands for the DHT and the relays in the round tests: its crawl finds every relay at once
// (or, while blocked, never ends), a relay that is up answers its probe at once, one that is down
// never answers (until it is up again), and the DHT never takes a pointer.
type fakeNet struct {
	t         *testing.T
	networkID [32]byte

	mu     sync.Mutex
	relays []*fakeRelay
	block  chan struct{} // non-nil: crawls wait until it is closed
}

type fakeRelay struct {
	id    keys.IdentityPublic
	found found
	down  chan struct{} // non-nil: the relay is down until it is closed
}

// addRelay adds a relay with a descriptor valid now.
func (f *fakeNet) addRelay(i int) *fakeRelay {
	id, _ := keys.GenerateIdentity(rand.Reader)
	link, _ := keys.GenerateStatic(rand.Reader)
	onion, _ := keys.GenerateStatic(rand.Reader)
	now := time.Unix(time.Now().Unix(), 0)
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 7000)
	d := descriptor.Descriptor{
		NetworkID: f.networkID, OnionKey: onion.Public(), LinkKey: link.Public(),
		ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(7 * 24 * time.Hour),
		Addresses: []netip.AddrPort{addr}, Bandwidth: 1 << 20, Software: "test", Published: now, Seq: 1,
	}
	raw, err := d.Sign(id)
	if err != nil {
		f.t.Fatal(err)
	}
	parsed, err := descriptor.Parse(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	r := &fakeRelay{id: id.Public(), found: found{desc: parsed, raw: raw, addr: addr}}
	f.mu.Lock()
	f.relays = append(f.relays, r)
	f.mu.Unlock()
	return r
}

// setDown takes r down (true) or brings it back, which answers the probe that waits for it.
func (f *fakeNet) setDown(r *fakeRelay, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case down && r.down == nil:
		r.down = make(chan struct{})
	case !down && r.down != nil:
		close(r.down)
		r.down = nil
	}
}

// blockCrawls makes crawls hang (true) or lets them, and the hanging one, finish.
func (f *fakeNet) blockCrawls(block bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case block && f.block == nil:
		f.block = make(chan struct{})
	case !block && f.block != nil:
		close(f.block)
		f.block = nil
	}
}

func (f *fakeNet) crawl(ctx context.Context, now time.Time) crawlResult {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return crawlResult{}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := crawlResult{ok: true, peers: len(f.relays), named: len(f.relays), accepted: make(map[keys.IdentityPublic]found), unsure: make(map[keys.IdentityPublic]bool)}
	for _, r := range f.relays {
		res.accepted[r.id] = r.found
	}
	return res
}

func (f *fakeNet) probe(ctx context.Context, info netdir.Relay, answered func()) (Probe, error) {
	start := time.Now()
	f.mu.Lock()
	var down chan struct{}
	for _, r := range f.relays {
		if r.id == info.Identity {
			down = r.down
		}
	}
	f.mu.Unlock()
	if down != nil {
		select {
		case <-down:
		case <-ctx.Done():
			return Probe{At: time.Unix(start.Unix(), 0)}, ctx.Err()
		}
	}
	answered()
	return Probe{At: time.Unix(start.Unix(), 0), OK: true, Build: time.Millisecond, RTT: time.Millisecond, Bandwidth: 1e6}, nil
}

// pointer is a DHT that never takes the pointer.
func (f *fakeNet) pointer(ctx context.Context, p *published) error {
	<-ctx.Done()
	return ctx.Err()
}

// startFakeAuthority starts the rounds of an authority whose crawl, probes and pointer go to f.
func startFakeAuthority(t *testing.T, f *fakeNet, period time.Duration) *Authority {
	t.Helper()
	cfg := defaultConfig()
	cfg.DataDir, cfg.Period = t.TempDir(), period
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	a := &Authority{
		cfg: cfg, validity: cfg.validity(), log: testLogger(t), id: id, networkID: f.networkID, db: db,
		relays:  make(map[keys.IdentityPublic]*relayState),
		crawlFn: f.crawl, probeFn: f.probe, pointerFn: f.pointer,
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.startRounds()
	return a
}

// TestRoundsPublishOnSchedule: a relay whose probe never answers, a crawl that never ends and a DHT
// that never takes the pointer delay no round. Each round's document is served by half a period
// after the round starts (on the test's fake clock), while the one before is still valid. The silent
// relay's probe (timeout 10 s, longer than the period) is failed at the first deadline that finds it
// a period old, in the second round after the relay stopped, and at each one after; the relay is
// dropped after three, and is back in the first round after it answers.
func TestRoundsPublishOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = 1500 * time.Millisecond // the testnet's
		deadline := period / 2
		f := &fakeNet{t: t, networkID: [32]byte{7}}
		healthy, silent := f.addRelay(0), f.addRelay(1)
		t0 := time.Now()
		a := startFakeAuthority(t, f, period)
		defer a.Close()

		var prev *directory.Directory
		// served waits until round k's deadline and returns the document served then, which must be
		// round k's, and which the previous one must not have outlived.
		served := func(k int) *directory.Directory {
			t.Helper()
			time.Sleep(time.Until(t0.Add(time.Duration(k-1)*period + deadline)))
			synctest.Wait()
			d, _ := a.Latest()
			if d == nil || d.Serial != uint64(k) {
				serial := uint64(0)
				if d != nil {
					serial = d.Serial
				}
				t.Fatalf("at round %d's deadline (%v after it started) the latest document is serial %d, want %d", k, deadline, serial, k)
			}
			if !d.ValidAt(time.Now()) {
				t.Fatalf("document %d, valid [%v, %v), is not valid when served at %v", k, d.ValidAfter, d.ValidUntil, time.Now())
			}
			if prev != nil && !prev.ValidAt(time.Now()) {
				t.Fatalf("document %d expired (%v) before its successor was served (%v)", prev.Serial, prev.ValidUntil, time.Now())
			}
			prev = d
			return d
		}
		flags := func(d *directory.Directory, r *fakeRelay) string {
			e, ok := entry(d, r.id)
			if !ok {
				return "not listed"
			}
			return e.Flags.String()
		}
		running := func(d *directory.Directory, r *fakeRelay) bool {
			e, ok := entry(d, r.id)
			return ok && e.Flags&directory.Running != 0
		}

		d := served(1)
		if !running(d, healthy) || !running(d, silent) {
			t.Fatalf("round 1: healthy %s, silent %s; want both Running", flags(d, healthy), flags(d, silent))
		}
		f.setDown(silent, true)
		for k := 2; k <= 5; k++ {
			d = served(k)
			if !running(d, healthy) {
				t.Fatalf("round %d: the healthy relay is %s", k, flags(d, healthy))
			}
			switch e, ok := entry(d, silent.id); {
			case k == 2 && !ok:
				t.Fatal("round 2: the silent relay, its probe running for half a period, is dropped already")
			case (k == 3 || k == 4) && (!ok || e.Flags&directory.Running != 0 || e.Flags&directory.Degraded == 0):
				t.Fatalf("round %d: the silent relay is %s; want listed, Degraded, not Running", k, flags(d, silent))
			case k == 5 && ok:
				t.Fatalf("round 5, after three failed probes: the silent relay is %s; want it dropped", flags(d, silent))
			}
		}

		// The relay answers at last (the probe waiting for it ends), while a crawl hangs.
		f.blockCrawls(true)
		f.setDown(silent, false)
		for k := 6; k <= 7; k++ {
			if d = served(k); !running(d, silent) || !running(d, healthy) {
				t.Fatalf("round %d, after the silent relay answered: healthy %s, silent %s; want both Running", k, flags(d, healthy), flags(d, silent))
			}
		}
		f.blockCrawls(false)
		served(8)
		s := a.Stats()
		if s.ProbesOverdue != 3 || s.RoundsUncrawled != 2 || s.PointerOK != 0 {
			t.Fatalf("%d probes overdue (want 3: rounds 3 to 5), %d rounds without a crawl (want 2: rounds 6 and 7), %d pointers published on a DHT that takes none", s.ProbesOverdue, s.RoundsUncrawled, s.PointerOK)
		}
	})
}

// TestOverdueProbeCountsOnce: a probe that a round's deadline found overdue (one failed probe) and
// that then fails is not counted again; one that then succeeds is.
func TestOverdueProbeCountsOnce(t *testing.T) {
	id := keys.IdentityPublic{1}
	r := &relayState{}
	a := &Authority{cfg: defaultConfig(), log: testLogger(t), relays: map[keys.IdentityPublic]*relayState{id: r}}
	a.probes = probeBoard{slots: make(map[keys.IdentityPublic]*probeSlot), changed: make(chan struct{}, 1)}
	t0 := time.Unix(1_800_000_000, 0)
	for _, ok := range []bool{false, true} {
		s := &probeSlot{state: probeStarted, started: t0}
		a.probes.slots[id] = s
		if done, overdue := a.probes.collect([]keys.IdentityPublic{id}, t0.Add(time.Second/2), time.Second); len(done) != 0 || len(overdue) != 0 {
			t.Fatalf("half its time in: %d ended, %d overdue", len(done), len(overdue))
		}
		if _, overdue := a.probes.collect([]keys.IdentityPublic{id}, t0.Add(time.Second), time.Second); len(overdue) != 1 {
			t.Fatalf("after its time: %d overdue, want 1", len(overdue))
		}
		n := len(r.Probes)
		a.probes.end(s, Probe{At: t0, OK: ok}, nil, false)
		done, _ := a.probes.collect(nil, time.Time{}, 0)
		a.takeIn(done)
		if want := n + map[bool]int{false: 0, true: 1}[ok]; len(r.Probes) != want {
			t.Fatalf("an overdue probe that then ends with OK %v: %d probes recorded, want %d", ok, len(r.Probes), want)
		}
	}
}

// TestValidityCountsFromSigning: a document is valid for at least validity from the moment it is
// signed, though it carries whole seconds, and never for longer than directory.MaxValidity.
func TestValidityCountsFromSigning(t *testing.T) {
	id, _ := keys.GenerateIdentity(rand.Reader)
	a := &Authority{id: id, networkID: [32]byte{7}, relays: make(map[keys.IdentityPublic]*relayState)}
	base := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct{ validity, frac time.Duration }{
		{3 * time.Second, 0}, {3 * time.Second, 999 * time.Millisecond}, {4500 * time.Millisecond, 600 * time.Millisecond},
		{directory.MaxValidity, 0}, {directory.MaxValidity, 300 * time.Millisecond},
	} {
		a.validity = tc.validity
		now := base.Add(tc.frac)
		p, err := a.sign(now)
		if err != nil {
			t.Fatalf("validity %v at %v: %v", tc.validity, now, err)
		}
		d := p.doc
		if d.ValidAfter.After(now) || (tc.validity < directory.MaxValidity && d.ValidUntil.Before(now.Add(tc.validity))) {
			t.Errorf("validity %v, signed at %v: valid [%v, %v)", tc.validity, now, d.ValidAfter, d.ValidUntil)
		}
	}
}
