package path

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestPickProperties draws 10,000 paths from random consensuses crowded into few /16s and families
// and checks every rule on each.
func TestPickProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const consensuses, draws = 5, 2000
	var ok, failed int
	kinds := map[error]int{}
	for c := range consensuses {
		relays := randomConsensus(t, rng, 200)
		byID := map[keys.IdentityPublic]netdir.Relay{}
		var exits []netdir.Relay
		for _, r := range relays {
			byID[r.Identity] = r
			if r.Flags.Has(netdir.Exit) {
				exits = append(exits, r)
			}
		}
		var g *GuardSet
		var s *Selector
		for d := range draws {
			if d%100 == 0 { // a new client now and then, so that many guards are exercised
				g = NewGuardSet()
				s = newSelector(t, relays, g, uint64(c*draws+d), nil)
			}
			choice := ExitChoice{Proto: Proto(rng.IntN(2)), Port: []uint16{0, 25, 53, 80, 443, 6500}[rng.IntN(6)]}
			switch rng.IntN(5) {
			case 1:
				choice.Mode, choice.Value = Country, testCountries[rng.IntN(len(testCountries))].country
			case 2:
				choice.Mode, choice.Value = Region, testCountries[rng.IntN(len(testCountries))].region
			case 3:
				choice.Mode = Random
			case 4:
				choice.Mode, choice.Value = Named, exits[rng.IntN(len(exits))].Identity.String()
			}
			var avoid []keys.IdentityPublic
			for range rng.IntN(3) {
				avoid = append(avoid, relays[rng.IntN(len(relays))].Identity)
			}
			p, err := s.Pick(choice, avoid...)
			if err != nil {
				failed++
				var kind error
				for _, k := range []error{ErrNoExit, ErrNoGuard, ErrNoMiddle} {
					if errors.Is(err, k) {
						kind = k
					}
				}
				if kind == nil {
					t.Fatalf("Pick(%v): error of no known kind: %v", choice, err)
				}
				kinds[kind]++
				continue
			}
			ok++
			checkPath(t, p, choice, avoid, byID, g)
		}
	}
	t.Logf("%d paths, %d failures by kind %v", ok, failed, kinds)
	if ok < consensuses*draws/2 {
		t.Fatalf("only %d of %d picks succeeded", ok, consensuses*draws)
	}
}

func checkPath(t *testing.T, p []netdir.Relay, choice ExitChoice, avoid []keys.IdentityPublic,
	byID map[keys.IdentityPublic]netdir.Relay, g *GuardSet) {
	t.Helper()
	if len(p) != 3 {
		t.Fatalf("path of %d hops", len(p))
	}
	for i, r := range p {
		listed, ok := byID[r.Identity]
		if !ok || listed.Addr != r.Addr {
			t.Fatalf("hop %d (%s) is not the consensus relay", i, r)
		}
		if !r.Flags.Has(netdir.Running) || r.Flags.Has(netdir.Degraded) {
			t.Fatalf("hop %d (%s) has flags %v", i, r, r.Flags)
		}
		for _, a := range avoid {
			if r.Identity == a {
				t.Fatalf("hop %d (%s) was to be avoided", i, r)
			}
		}
		for j := range i {
			q := p[j]
			switch {
			case q.Identity == r.Identity:
				t.Fatalf("%s is hops %d and %d", r, j, i)
			case sameSubnet(q.Addr.Addr(), r.Addr.Addr()):
				t.Fatalf("hops %d (%s, %v) and %d (%s, %v) share a subnet", j, q, q.Addr, i, r, r.Addr)
			case lists(q, r.Identity) && lists(r, q.Identity):
				t.Fatalf("hops %d (%s) and %d (%s) are one family", j, q, i, r)
			}
		}
	}
	guard, exit := p[0], p[2]
	if !guard.Flags.Has(netdir.Guard) {
		t.Fatalf("guard %s has flags %v", guard, guard.Flags)
	}
	inSet := false
	for _, e := range g.Guards() {
		inSet = inSet || e.Identity == guard.Identity
	}
	if !inSet {
		t.Fatalf("guard %s is not in the guard set", guard)
	}
	if !exit.Flags.Has(netdir.Exit) {
		t.Fatalf("exit %s has flags %v", exit, exit.Flags)
	}
	var allowed bool
	switch {
	case choice.Port == 0 && choice.Proto == TCP:
		allowed = len(exit.Exit.TCP) > 0
	case choice.Port == 0:
		allowed = len(exit.Exit.UDP) > 0
	case choice.Proto == TCP:
		allowed = exit.Exit.AllowsTCP(choice.Port)
	default:
		allowed = exit.Exit.AllowsUDP(choice.Port)
	}
	if !allowed {
		t.Fatalf("exit %s (%v) does not allow %v", exit, exit.Exit, choice)
	}
	switch choice.Mode {
	case Country:
		allowed = strings.EqualFold(exit.Country, choice.Value)
	case Region:
		allowed = strings.EqualFold(exit.Region, choice.Value)
	case Named:
		allowed = exit.Identity.String() == choice.Value
	}
	if !allowed {
		t.Fatalf("exit %s (%s, %s) does not fit %v", exit, exit.Country, exit.Region, choice)
	}
}

// middleWeights is the consensus of the statistical tests: one guard, one exit, and middles of
// weights 100 to 1000 plus one unmeasured (which weighs as the lightest measured, 100).
func middleWeights() ([]netdir.Relay, []float64) {
	rs := []netdir.Relay{
		rel(0, ipv4(0), netdir.Running|netdir.Guard, 5000),
		rel(1, ipv4(1), netdir.Running|netdir.Exit, 5000),
	}
	rs[1].Exit.TCP = []exitports.Range{{Lo: 1, Hi: 65535}}
	var w []float64
	for i := 1; i <= 10; i++ {
		rs = append(rs, rel(1+i, ipv4(1+i), netdir.Running, uint64(100*i)))
		w = append(w, float64(100*i))
	}
	rs = append(rs, rel(12, ipv4(12), netdir.Running, 0))
	w = append(w, 100)
	return rs, w
}

// chiSquareCritical11 is the chi-square value that 11 categories (10 degrees of freedom) exceed with
// probability 0.001 when the draws do follow the expected frequencies.
const chiSquareCritical11 = 29.59

// TestMiddleFollowsWeights draws middles with a fixed seed and holds their frequencies to the weights
// by a chi-square test; it also shows that the test has power: uniform draws fail it by far.
func TestMiddleFollowsWeights(t *testing.T) {
	relays, w := middleWeights()
	s := newSelector(t, relays, NewGuardSet(), 7, nil)
	const n = 20000
	counts := make([]int, len(w))
	for range n {
		p, err := s.Pick(ExitChoice{})
		if err != nil {
			t.Fatal(err)
		}
		if p[0].Identity != testID(0) || p[2].Identity != testID(1) {
			t.Fatalf("path %v: want guard r0 and exit r1", p)
		}
		counts[int(p[1].Identity[2])-2]++
	}
	var total float64
	for _, x := range w {
		total += x
	}
	expected := make([]float64, len(w))
	for i, x := range w {
		expected[i] = n * x / total
	}
	if x := chiSquare(counts, expected); x > chiSquareCritical11 {
		t.Errorf("middle counts %v against expected %v: chi-square %.1f > %.2f",
			counts, expected, x, chiSquareCritical11)
	} else {
		t.Logf("chi-square %.1f (critical %.2f)", x, chiSquareCritical11)
	}

	uniform := make([]int, len(w))
	rng := rand.New(rand.NewPCG(7, 7))
	for range n {
		uniform[rng.IntN(len(w))]++
	}
	if x := chiSquare(uniform, expected); x < 10*chiSquareCritical11 {
		t.Errorf("uniform draws give chi-square %.1f: the test could not tell them from weighted ones", x)
	}
}

func TestUnmeasuredWeight(t *testing.T) {
	rs := []netdir.Relay{rel(0, ipv4(0), netdir.Running, 0), rel(1, ipv4(1), netdir.Running, 300), rel(2, ipv4(2), netdir.Running, 50),
		rel(3, ipv4(3), netdir.Running, 1<<62)}
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	for i, want := range []uint64{50, 300, 50, MaxWeight} {
		if got := s.byID[testID(i)].weight; got != want {
			t.Errorf("relay %d weighs %d, want %d", i, got, want)
		}
	}
	s = newSelector(t, []netdir.Relay{rel(0, ipv4(0), netdir.Running, 0), rel(1, ipv4(1), netdir.Running, 0)}, NewGuardSet(), 1, nil)
	if w0, w1 := s.byID[testID(0)].weight, s.byID[testID(1)].weight; w0 != 1 || w1 != 1 {
		t.Errorf("with nothing measured, weights %d and %d, want 1 and 1", w0, w1)
	}
}

// smallNet is a guard, an exit and middles, each in its own /16.
func smallNet(middles int) []netdir.Relay {
	rs := []netdir.Relay{rel(0, ipv4(0), netdir.Running|netdir.Guard, 100), rel(1, ipv4(1), netdir.Running|netdir.Exit, 100)}
	rs[1].Exit.TCP = []exitports.Range{{Lo: 1, Hi: 65535}}
	for i := range middles {
		rs = append(rs, rel(2+i, ipv4(2+i), netdir.Running, 100))
	}
	return rs
}

func TestNoMiddle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(rs []netdir.Relay)
		avoid []keys.IdentityPublic
		want  string
	}{
		{"guard's /16", func(rs []netdir.Relay) { rs[2].Addr = rs[0].Addr }, nil,
			"no middle outside the guard's and exit's /16 and families"},
		{"exit's /16", func(rs []netdir.Relay) { rs[2].Addr = rs[1].Addr }, nil,
			"no middle outside the guard's and exit's /16 and families"},
		{"exit's family", func(rs []netdir.Relay) { family(rs, 1, 2) }, nil,
			"no middle outside the guard's and exit's /16 and families"},
		{"degraded", func(rs []netdir.Relay) { rs[2].Flags |= netdir.Degraded }, nil, "no middle outside"},
		{"down", func(rs []netdir.Relay) { rs[2].Flags &^= netdir.Running }, nil, "no middle outside"},
		{"avoided", func([]netdir.Relay) {}, []keys.IdentityPublic{testID(2)},
			"no middle outside the guard's and exit's /16 and families, not avoided"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := smallNet(1)
			tc.setup(rs)
			s := newSelector(t, rs, NewGuardSet(), 1, nil)
			_, err := s.Pick(ExitChoice{}, tc.avoid...)
			if !errors.Is(err, ErrNoMiddle) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Pick: %v; want ErrNoMiddle saying %q", err, tc.want)
			}
		})
	}
}

func TestOneSidedFamilyIsNoFamily(t *testing.T) {
	rs := smallNet(1)
	rs[1].Family = []keys.IdentityPublic{rs[2].Identity} // the exit claims the only middle
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	if _, err := s.Pick(ExitChoice{}); err != nil {
		t.Fatalf("a one-sided family claim blocked the path: %v", err)
	}
}

func TestAvoidedMiddleNeverChosen(t *testing.T) {
	s := newSelector(t, smallNet(3), NewGuardSet(), 1, nil)
	for range 500 {
		p, err := s.Pick(ExitChoice{}, testID(2))
		if err != nil {
			t.Fatal(err)
		}
		if p[1].Identity == testID(2) {
			t.Fatal("the avoided middle was chosen")
		}
	}
}

// A middle that is the exit's rendezvous would take the client's only known way to the exit down with
// it: such a relay is the middle only when no other relay fits.
func TestExitsRendezvousIsNoMiddle(t *testing.T) {
	rs := smallNet(3)
	rs[1].Rendezvous = []descriptor.Rendezvous{{Addr: rs[2].Addr}, {Addr: rs[3].Addr}} // relays 2 and 3 serve the exit
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	for range 500 {
		p, err := s.Pick(ExitChoice{})
		if err != nil {
			t.Fatal(err)
		}
		if p[1].Identity != testID(4) {
			t.Fatalf("middle %s, one of the exit's rendezvous, while relay 4 was free", p[1])
		}
	}
	// When the rendezvous are all that is left, one of them serves.
	p, err := s.Pick(ExitChoice{}, testID(4))
	if err != nil || (p[1].Identity != testID(2) && p[1].Identity != testID(3)) {
		t.Fatalf("with relay 4 avoided: %v, %v", p, err)
	}
}

// A client rebuilding after a middle failed keeps the guard it just heard from, even when the latest
// directory took its Guard flag or marked it Degraded; only a guard gone from the consensus (or
// avoided) is refused, so that the caller picks as usual.
func TestPickThroughKeepsTheGuard(t *testing.T) {
	rs := smallNet(3)
	rs[0].Flags = netdir.Running | netdir.Degraded // the guard, flags gone: Pick would not take it
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	for range 50 {
		p, err := s.PickThrough(testID(0), ExitChoice{}, testID(2))
		if err != nil {
			t.Fatal(err)
		}
		if p[0].Identity != testID(0) || p[1].Identity == testID(2) || p[2].Identity != testID(1) {
			t.Fatalf("path %v", p)
		}
	}
	if _, err := s.PickThrough(testID(99), ExitChoice{}); !errors.Is(err, ErrNoGuard) {
		t.Fatalf("a guard not in the consensus: %v", err)
	}
	if _, err := s.PickThrough(testID(0), ExitChoice{}, testID(0)); !errors.Is(err, ErrNoGuard) {
		t.Fatalf("an avoided guard: %v", err)
	}
	if _, err := s.Pick(ExitChoice{}); !errors.Is(err, ErrNoGuard) {
		t.Fatalf("Pick took a degraded relay without the Guard flag: %v", err)
	}
}

func TestAllowSameSubnet(t *testing.T) {
	var rs []netdir.Relay // the namespace testnet: everyone in 10.240.0.0/24
	for i := range 5 {
		rs = append(rs, rel(i, fmt.Sprintf("10.240.0.%d", 11+i), netdir.Running, 0))
	}
	rs[0].Flags |= netdir.Guard
	rs[4].Flags |= netdir.Exit
	rs[4].Exit.TCP = []exitports.Range{{Lo: 1, Hi: 65535}}
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	if _, err := s.Pick(ExitChoice{}); !isErr(err, ErrNoGuard, "in the same /16 as the exit") {
		t.Fatalf("Pick inside one /16 without AllowSameSubnet: %v, want ErrNoGuard for the /16", err)
	}
	family(rs, 0, 1, 2) // families still count: only 3 may be the middle
	s, err := New(Config{Dir: dir(t, rs), Guards: NewGuardSet(), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		p, err := s.Pick(ExitChoice{})
		if err != nil {
			t.Fatal(err)
		}
		if p[0].Identity != testID(0) || p[1].Identity != testID(3) || p[2].Identity != testID(4) {
			t.Fatalf("path %v, want r0, r3, r4", p)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"no guard set", "no directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestConcurrentPicks is for the race detector: Pick and Save from several goroutines at once.
func TestConcurrentPicks(t *testing.T) {
	relays := randomConsensus(t, rand.New(rand.NewPCG(3, 3)), 200)
	g := NewGuardSet()
	s := newSelector(t, relays, g, 3, nil)
	file := t.TempDir() + "/guards"
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				s.Pick(ExitChoice{Port: 443})
				if g.Changed() {
					if err := g.Save(file); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}
