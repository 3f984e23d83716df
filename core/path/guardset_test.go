package path

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// guardNet has 10 guards (r0–r9), 3 middles (r20–r22) and 2 exits (r30, r31), each in its own /16.
func guardNet() []netdir.Relay {
	var rs []netdir.Relay
	for i := range 10 {
		rs = append(rs, rel(i, ipv4(i), netdir.Running|netdir.Guard|netdir.Stable|netdir.Fast, uint64(100*(i+1))))
	}
	for i := 20; i < 23; i++ {
		rs = append(rs, rel(i, ipv4(i), netdir.Running, 100))
	}
	for i := 30; i < 32; i++ {
		r := rel(i, ipv4(i), netdir.Running|netdir.Exit, 100)
		r.Exit.TCP = []exitports.Range{{Lo: 1, Hi: 65535}}
		rs = append(rs, r)
	}
	return rs
}

func with(rs []netdir.Relay, id keys.IdentityPublic, f func(*netdir.Relay)) []netdir.Relay {
	rs = slices.Clone(rs)
	for i := range rs {
		if rs[i].Identity == id {
			f(&rs[i])
		}
	}
	return rs
}

func without(rs []netdir.Relay, id keys.IdentityPublic) []netdir.Relay {
	return slices.DeleteFunc(slices.Clone(rs), func(r netdir.Relay) bool { return r.Identity == id })
}

func pickGuard(t *testing.T, s *Selector, choice ExitChoice, avoid ...keys.IdentityPublic) keys.IdentityPublic {
	t.Helper()
	p, err := s.Pick(choice, avoid...)
	if err != nil {
		t.Fatal(err)
	}
	return p[0].Identity
}

func ids(g *GuardSet) []keys.IdentityPublic {
	var out []keys.IdentityPublic
	for _, e := range g.Guards() {
		out = append(out, e.Identity)
	}
	return out
}

func TestGuardSetFilled(t *testing.T) {
	clk := newClock()
	rs := guardNet()
	rs[0].Flags &^= netdir.Running // never sampled
	rs[1].Flags |= netdir.Degraded // never sampled
	g := NewGuardSet()
	s := newSelector(t, rs, g, 1, clk.Now)
	guard := pickGuard(t, s, ExitChoice{})
	es := g.Guards()
	if len(es) != GuardTarget {
		t.Fatalf("%d guards, want %d", len(es), GuardTarget)
	}
	if guard != es[0].Identity {
		t.Errorf("path guard %v is not the set's first, %v", guard, es[0].Identity)
	}
	for _, e := range es {
		if e.Identity == testID(0) || e.Identity == testID(1) {
			t.Errorf("sampled %v, which is down or degraded", e.Identity)
		}
		if !e.Sampled.Equal(clk.Now()) {
			t.Errorf("sampled at %v, want %v", e.Sampled, clk.Now())
		}
		if life := e.Expires.Sub(e.Sampled); life < GuardLifetimeMin || life >= GuardLifetimeMax {
			t.Errorf("lifetime %v", life)
		}
	}
	if !g.Changed() {
		t.Error("a filled set is not Changed")
	}
	if err := g.Save(filepath.Join(t.TempDir(), "guards")); err != nil {
		t.Fatal(err)
	}
	if g.Changed() {
		t.Error("Changed after Save")
	}
	pickGuard(t, s, ExitChoice{})
	if g.Changed() {
		t.Error("a Pick that kept the set made it Changed")
	}
}

// TestGuardLifetimes checks that lifetimes spread over [GuardLifetimeMin, GuardLifetimeMax).
func TestGuardLifetimes(t *testing.T) {
	var short, long int
	for seed := range uint64(200) {
		g := NewGuardSet()
		pickGuard(t, newSelector(t, guardNet(), g, seed, nil), ExitChoice{})
		for _, e := range g.Guards() {
			switch life := e.Expires.Sub(e.Sampled); {
			case life < GuardLifetimeMin || life >= GuardLifetimeMax:
				t.Fatalf("lifetime %v", life)
			case life < 35*24*time.Hour:
				short++
			case life > 55*24*time.Hour:
				long++
			}
		}
	}
	if short < 30 || long < 30 { // 600 lifetimes, about 100 expected in each sixth
		t.Errorf("%d lifetimes under 35 days and %d over 55: not spread over 30–60", short, long)
	}
}

func TestGuardSampleAvoidsSameSubnetAndFamily(t *testing.T) {
	rs := guardNet()
	for i := 1; i < 5; i++ { // r0–r4 in one /16
		rs[i].Addr = rs[0].Addr
	}
	family(rs, 5, 6, 7, 8, 9)
	for seed := range uint64(50) {
		g := NewGuardSet()
		pickGuard(t, newSelector(t, rs, g, seed, nil), ExitChoice{})
		var subnet, fam int
		for _, id := range ids(g) {
			if id[2] < 5 {
				subnet++
			} else {
				fam++
			}
		}
		if len(ids(g)) != 2 || subnet != 1 || fam != 1 {
			t.Fatalf("guard set %v: want one guard of r0–r4 and one of r5–r9, and no third", ids(g))
		}
	}
}

func TestGuardKeptAcrossRestarts(t *testing.T) {
	clk := newClock()
	file := filepath.Join(t.TempDir(), "state", "guards")
	g, err := LoadOrNewGuardSet(file)
	if err != nil {
		t.Fatal(err)
	}
	first := pickGuard(t, newSelector(t, guardNet(), g, 1, clk.Now), ExitChoice{})
	if err := g.Save(file); err != nil {
		t.Fatal(err)
	}
	for restart := range uint64(20) {
		clk.Advance(24 * time.Hour)
		g2, err := LoadOrNewGuardSet(file)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g2.Guards(), g.Guards()) {
			t.Fatalf("loaded %v, saved %v", g2.Guards(), g.Guards())
		}
		s := newSelector(t, guardNet(), g2, 100+restart, clk.Now)
		for range 20 {
			if got := pickGuard(t, s, ExitChoice{Mode: Random}); got != first {
				t.Fatalf("day %d: guard %v, want %v", restart+1, got, first)
			}
		}
		if g2.Changed() {
			t.Fatal("a set whose guards are all fine changed")
		}
	}
}

func TestExpiredGuardsReplaced(t *testing.T) {
	clk := newClock()
	g := NewGuardSet()
	s := newSelector(t, guardNet(), g, 1, clk.Now)
	pickGuard(t, s, ExitChoice{})
	old := g.Guards()

	// Expire the first guard only: it goes, the others keep their order, and one new joins at the end.
	slices.SortFunc(old, func(a, b GuardEntry) int { return a.Expires.Compare(b.Expires) })
	clk.Advance(old[0].Expires.Sub(clk.Now()))
	got := pickGuard(t, s, ExitChoice{})
	now := g.Guards()
	if len(now) != GuardTarget || slices.ContainsFunc(now, func(e GuardEntry) bool { return e == old[0] }) {
		t.Fatalf("after the first expiry: %v (expired %v)", now, old[0])
	}
	if !now[GuardTarget-1].Sampled.Equal(clk.Now()) {
		t.Fatalf("the replacement was sampled at %v, want %v", now[GuardTarget-1].Sampled, clk.Now())
	}
	if got != now[0].Identity {
		t.Fatalf("path guard %v, want the set's first %v", got, now[0].Identity)
	}

	clk.Advance(GuardLifetimeMax)
	pickGuard(t, s, ExitChoice{})
	for _, e := range g.Guards() {
		if !e.Sampled.Equal(clk.Now()) {
			t.Fatalf("guard %v survived past its expiry", e)
		}
	}
}

func TestUnusableGuardSkippedButKept(t *testing.T) {
	g := NewGuardSet()
	rs := guardNet()
	pickGuard(t, newSelector(t, rs, g, 1, nil), ExitChoice{})
	set := ids(g)
	for _, tc := range []struct {
		name   string
		relays []netdir.Relay
		avoid  []keys.IdentityPublic
	}{
		{"degraded", with(rs, set[0], func(r *netdir.Relay) { r.Flags |= netdir.Degraded }), nil},
		{"down", with(rs, set[0], func(r *netdir.Relay) { r.Flags &^= netdir.Running }), nil},
		{"no longer Guard", with(rs, set[0], func(r *netdir.Relay) { r.Flags &^= netdir.Guard }), nil},
		{"missing", without(rs, set[0]), nil},
		{"avoided", rs, []keys.IdentityPublic{set[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSelector(t, tc.relays, g, 2, nil)
			for range 20 {
				if got := pickGuard(t, s, ExitChoice{}, tc.avoid...); got != set[1] {
					t.Fatalf("guard %v, want the second, %v", got, set[1])
				}
			}
			if !slices.Equal(ids(g), set) {
				t.Fatalf("guard set became %v, was %v", ids(g), set)
			}
			// Back to health: the first guard again.
			if got := pickGuard(t, newSelector(t, rs, g, 3, nil), ExitChoice{}); got != set[0] {
				t.Fatalf("guard %v after recovery, want %v", got, set[0])
			}
		})
	}
}

func TestGuardConflictingWithExitSkipped(t *testing.T) {
	g := NewGuardSet()
	rs := guardNet()
	pickGuard(t, newSelector(t, rs, g, 1, nil), ExitChoice{})
	set := ids(g)
	for _, tc := range []struct {
		name   string
		relays []netdir.Relay
	}{
		{"same /16", with(rs, testID(30), func(r *netdir.Relay) { r.Addr = rs[set[0][2]].Addr })},
		{"same family", func() []netdir.Relay {
			rs := slices.Clone(rs)
			rs[set[0][2]].Family = []keys.IdentityPublic{testID(30)}
			return with(rs, testID(30), func(r *netdir.Relay) { r.Family = []keys.IdentityPublic{set[0]} })
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSelector(t, tc.relays, g, 2, nil)
			if got := pickGuard(t, s, ExitChoice{Mode: Named, Value: "r30"}); got != set[1] {
				t.Fatalf("guard %v beside exit r30, want %v", got, set[1])
			}
			if got := pickGuard(t, s, ExitChoice{Mode: Named, Value: "r31"}); got != set[0] {
				t.Fatalf("guard %v beside exit r31, want %v", got, set[0])
			}
			if !slices.Equal(ids(g), set) {
				t.Fatalf("guard set became %v, was %v", ids(g), set)
			}
		})
	}
}

func TestGuardSetGrowsOnlyWhenNoGuardServes(t *testing.T) {
	g := NewGuardSet()
	rs := guardNet()
	pickGuard(t, newSelector(t, rs, g, 1, nil), ExitChoice{})
	degraded := rs
	for _, id := range ids(g) {
		degraded = with(degraded, id, func(r *netdir.Relay) { r.Flags |= netdir.Degraded })
	}
	s := newSelector(t, degraded, g, 2, nil)
	got := pickGuard(t, s, ExitChoice{})
	set := ids(g)
	if len(set) != GuardTarget+1 || got != set[GuardTarget] {
		t.Fatalf("with every guard degraded: guard %v, set %v; want a fourth guard", got, set)
	}

	// Degrade every Guard-flagged relay: the set grows to GuardMax and no further.
	for i := range 10 {
		degraded = with(degraded, testID(i), func(r *netdir.Relay) { r.Flags |= netdir.Degraded })
	}
	degraded = append(degraded, rel(40, ipv4(40), netdir.Running|netdir.Guard, 100), rel(41, ipv4(41), netdir.Running|netdir.Guard, 100),
		rel(42, ipv4(42), netdir.Running|netdir.Guard, 100))
	s = newSelector(t, degraded, g, 3, nil)
	pickGuard(t, s, ExitChoice{})
	if n := len(g.Guards()); n != GuardTarget+2 {
		t.Fatalf("%d guards, want %d", n, GuardTarget+2)
	}
	pickGuard(t, s, ExitChoice{}, g.Guards()[GuardTarget+1].Identity)
	if n := len(g.Guards()); n != GuardMax {
		t.Fatalf("%d guards, want %d", n, GuardMax)
	}
	_, err := s.Pick(ExitChoice{}, testID(40), testID(41), testID(42))
	if !errors.Is(err, ErrNoGuard) || !strings.Contains(err.Error(), "the guard set is full (6 guards)") ||
		!strings.Contains(err.Error(), "degraded") || !strings.Contains(err.Error(), "avoided") {
		t.Fatalf("with a full set of unusable guards: %v", err)
	}
	if n := len(g.Guards()); n != GuardMax {
		t.Fatalf("%d guards, want %d", n, GuardMax)
	}
}

func TestNoGuardToSample(t *testing.T) {
	rs := guardNet()
	for i := range 10 {
		rs[i].Flags &^= netdir.Guard
	}
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	_, err := s.Pick(ExitChoice{})
	if !errors.Is(err, ErrNoGuard) || !strings.Contains(err.Error(), "the guard set is empty") ||
		!strings.Contains(err.Error(), "no other Guard-flagged relay can join the guard set") {
		t.Fatalf("no Guard-flagged relay: %v", err)
	}
}

// TestGuardFromTheFutureClamped: a guard that expires further ahead than any lifetime (the clock went
// back, or the file was edited) is kept, but not for longer than GuardLifetimeMax from now.
func TestGuardFromTheFutureClamped(t *testing.T) {
	clk := newClock()
	far := clk.Now().Add(400 * 24 * time.Hour)
	g := &GuardSet{guards: []GuardEntry{{Identity: testID(3), Sampled: far.Add(-GuardLifetimeMax), Expires: far}}}
	if got := pickGuard(t, newSelector(t, guardNet(), g, 1, clk.Now), ExitChoice{}); got != testID(3) {
		t.Fatalf("guard %v, want r3", got)
	}
	if e := g.Guards()[0]; !e.Expires.Equal(clk.Now().Add(GuardLifetimeMax)) {
		t.Fatalf("expiry %v, want %v", e.Expires, clk.Now().Add(GuardLifetimeMax))
	}
}
