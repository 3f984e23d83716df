package path

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// exitNet has a guard (r0), three middles (r1–r3) and these exits (r10–r15):
//
//	r10 DE eu  tcp=80,443 udp=53            weight 1000
//	r11 NL eu  tcp=1-1000 udp=1-1000        weight 2000
//	r12 US na  tcp=22,80,443,6000-7000      weight 3000
//	r13 JP asia tcp=none udp=53,443         weight 4000
//	r14 DE eu  tcp=25,80                    weight 5000, Degraded
//	r15 CA na  tcp=25,80                    weight 6000, down
func exitNet(t *testing.T) []netdir.Relay {
	rs := []netdir.Relay{rel(0, ipv4(0), netdir.Running|netdir.Guard, 100)}
	for i := 1; i <= 3; i++ {
		rs = append(rs, rel(i, ipv4(i), netdir.Running, 100))
	}
	for i, e := range []struct {
		country, region, ports string
		flags                  netdir.Flags
	}{
		{"DE", "eu", testSummaries[0], 0},
		{"NL", "eu", "tcp=1-1000 udp=1-1000", 0},
		{"US", "na", testSummaries[2], 0},
		{"JP", "asia", testSummaries[3], 0},
		{"DE", "eu", testSummaries[4], netdir.Degraded},
		{"CA", "na", testSummaries[4], 0},
	} {
		r := rel(10+i, ipv4(10+i), netdir.Running|netdir.Exit|e.flags, uint64(1000*(i+1)))
		if i == 5 {
			r.Flags &^= netdir.Running
		}
		r.Country, r.Region, r.Exit = e.country, e.region, mustSummary(t, e.ports)
		rs = append(rs, r)
	}
	return rs
}

// exitsChosen picks n times and counts the exits (by relay number).
func exitsChosen(t *testing.T, s *Selector, c ExitChoice, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for range n {
		p, err := s.Pick(c)
		if err != nil {
			t.Fatalf("Pick(%v): %v", c, err)
		}
		seen[int(p[2].Identity[2])]++
	}
	return seen
}

func TestExitModes(t *testing.T) {
	s := newSelector(t, exitNet(t), NewGuardSet(), 1, nil)
	for _, tc := range []struct {
		choice ExitChoice
		want   []int
	}{
		{ExitChoice{}, []int{10, 11, 12}},
		{ExitChoice{Proto: UDP}, []int{10, 11, 13}},
		{ExitChoice{Port: 443}, []int{10, 11, 12}},
		{ExitChoice{Port: 25}, []int{11}}, // r14 degraded, r15 down
		{ExitChoice{Port: 6500}, []int{12}},
		{ExitChoice{Proto: UDP, Port: 443}, []int{11, 13}},
		{ExitChoice{Mode: Country, Value: "de"}, []int{10}},
		{ExitChoice{Mode: Country, Value: "NL", Port: 25}, []int{11}},
		{ExitChoice{Mode: Region, Value: "EU"}, []int{10, 11}},
		{ExitChoice{Mode: Region, Value: "na", Port: 6000}, []int{12}},
		{ExitChoice{Mode: Named, Value: "r12"}, []int{12}},
		{ExitChoice{Mode: Named, Value: testID(13).String(), Proto: UDP, Port: 53}, []int{13}},
		{ExitChoice{Mode: Random, Port: 80}, []int{10, 11, 12}},
	} {
		seen := exitsChosen(t, s, tc.choice, 300)
		for _, w := range tc.want {
			if seen[w] == 0 {
				t.Errorf("%v: exit r%d never chosen (%v)", tc.choice, w, seen)
			}
			delete(seen, w)
		}
		if len(seen) > 0 {
			t.Errorf("%v: chose exits %v, want only %v", tc.choice, seen, tc.want)
		}
	}
}

func TestExitErrors(t *testing.T) {
	rs := exitNet(t)
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	for _, tc := range []struct {
		choice ExitChoice
		avoid  int // relay number, or 0
		want   string
	}{
		{ExitChoice{Port: 8080}, 0, "no exit allows tcp/8080"},
		{ExitChoice{Proto: UDP, Port: 5000}, 0, "no exit allows udp/5000"},
		{ExitChoice{Mode: Country, Value: "FR"}, 0, "no usable exit in country FR"},
		{ExitChoice{Mode: Country, Value: "CA"}, 0, "no usable exit in country CA"}, // down
		{ExitChoice{Mode: Country, Value: "DE", Port: 25}, 0, "no exit in country DE allows tcp/25"},
		{ExitChoice{Mode: Region, Value: "asia", Proto: TCP}, 0, "no exit in region asia allows tcp (any port)"},
		{ExitChoice{Mode: Named, Value: "r99"}, 0, `no relay in the consensus is named "r99"`},
		{ExitChoice{Mode: Named, Value: testID(99).String()}, 0, "no relay in the consensus has identity"},
		{ExitChoice{Mode: Named, Value: "r2"}, 0, "relay r2 (" + testID(2).String() + ") is not an exit"},
		{ExitChoice{Mode: Named, Value: "r14"}, 0, "exit r14 (" + testID(14).String() + ") is degraded"},
		{ExitChoice{Mode: Named, Value: "r15"}, 0, "is not running"},
		{ExitChoice{Mode: Named, Value: "r10"}, 10, "is avoided"},
		{ExitChoice{Mode: Named, Value: "r10", Port: 22}, 0, "does not allow tcp/22"},
	} {
		var avoid []keys.IdentityPublic
		if tc.avoid != 0 {
			avoid = append(avoid, testID(tc.avoid))
		}
		_, err := s.Pick(tc.choice, avoid...)
		if !errors.Is(err, ErrNoExit) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Pick(%v): %v; want ErrNoExit saying %q", tc.choice, err, tc.want)
		}
	}

	for i := range rs {
		if rs[i].Flags.Has(netdir.Exit) {
			rs[i].Flags |= netdir.Degraded
		}
	}
	s = newSelector(t, rs, NewGuardSet(), 1, nil)
	if _, err := s.Pick(ExitChoice{}); !errors.Is(err, ErrNoExit) ||
		!strings.Contains(err.Error(), "no usable exit: of 6 exits, 1 are down, 5 degraded, 0 avoided") {
		t.Errorf("every exit degraded: %v", err)
	}
	s = newSelector(t, rs[:4], NewGuardSet(), 1, nil)
	if _, err := s.Pick(ExitChoice{}); !isErr(err, ErrNoExit, "no relay in the consensus is an exit") {
		t.Errorf("no exits: %v", err)
	}
}

func TestNamedAmbiguous(t *testing.T) {
	rs := exitNet(t)
	rs[2].Name = "r10" // an impostor claims the exit's name
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	_, err := s.Pick(ExitChoice{Mode: Named, Value: "r10"})
	if !errors.Is(err, ErrNoExit) || !strings.Contains(err.Error(), `2 relays claim the name "r10"`) {
		t.Fatalf("Pick of an ambiguous name: %v", err)
	}
	if _, err := s.Pick(ExitChoice{Mode: Named, Value: testID(10).String()}); err != nil {
		t.Fatalf("by identity: %v", err)
	}
}

func TestChoiceChecked(t *testing.T) {
	s := newSelector(t, exitNet(t), NewGuardSet(), 1, nil)
	for _, tc := range []struct {
		choice ExitChoice
		want   string
	}{
		{ExitChoice{Value: "DE"}, "exit mode auto takes no value"},
		{ExitChoice{Mode: Random, Value: "x"}, "exit mode random takes no value"},
		{ExitChoice{Mode: Country}, "exit mode country needs a value"},
		{ExitChoice{Mode: Named}, "exit mode named needs a value"},
		{ExitChoice{Mode: 9}, "unknown exit mode 9"},
		{ExitChoice{Mode: Region, Proto: 7}, "exit mode region needs a value\nunknown protocol 7"},
	} {
		if _, err := s.Pick(tc.choice); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Pick(%#v): %v; want %q", tc.choice, err, tc.want)
		}
	}
	for _, m := range []ExitMode{Auto, Country, Region, Random, Named} {
		if got, err := ParseExitMode(m.String()); err != nil || got != m {
			t.Errorf("ParseExitMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseExitMode("fastest"); err == nil {
		t.Error("ParseExitMode accepted \"fastest\"")
	}
}

// exitWeights is a consensus of 8 exits of weights 1000 to 8000 around one guard and one middle.
func exitWeights(t *testing.T) ([]netdir.Relay, []float64) {
	rs := []netdir.Relay{rel(0, ipv4(0), netdir.Running|netdir.Guard, 100), rel(1, ipv4(1), netdir.Running, 100)}
	var w []float64
	for i := range 8 {
		r := rel(2+i, ipv4(2+i), netdir.Running|netdir.Exit, uint64(1000*(i+1)))
		r.Exit = mustSummary(t, testSummaries[1])
		rs = append(rs, r)
		w = append(w, float64(1000*(i+1)))
	}
	return rs, w
}

// chiSquareCritical8 is the chi-square value that 8 categories (7 degrees of freedom) exceed with
// probability 0.001 when the draws follow the expected frequencies.
const chiSquareCritical8 = 24.32

// TestExitDistribution holds Auto to the weights and Random to uniform, each by a chi-square test
// with a fixed seed, and checks that each test would catch the other distribution.
func TestExitDistribution(t *testing.T) {
	rs, w := exitWeights(t)
	const n = 16000
	var total float64
	for _, x := range w {
		total += x
	}
	weighted, uniform := make([]float64, len(w)), make([]float64, len(w))
	for i, x := range w {
		weighted[i], uniform[i] = n*x/total, n/float64(len(w))
	}
	for _, tc := range []struct {
		mode        ExitMode
		want, other []float64
	}{
		{Auto, weighted, uniform},
		{Random, uniform, weighted},
	} {
		s := newSelector(t, rs, NewGuardSet(), 11, nil)
		seen := exitsChosen(t, s, ExitChoice{Mode: tc.mode}, n)
		counts := make([]int, len(w))
		for id, c := range seen {
			counts[id-2] = c
		}
		if x := chiSquare(counts, tc.want); x > chiSquareCritical8 {
			t.Errorf("%v: exit counts %v: chi-square %.1f > %.2f", tc.mode, counts, x, chiSquareCritical8)
		}
		if x := chiSquare(counts, tc.other); x < 10*chiSquareCritical8 {
			t.Errorf("%v: exit counts %v fit the other distribution too well (chi-square %.1f)", tc.mode, counts, x)
		}
	}
}

// TestExitSetAsideWhenNothingFits: an exit that no guard or middle fits beside is not chosen; the
// others are, by their weights among themselves.
func TestExitSetAsideWhenNothingFits(t *testing.T) {
	rs, _ := exitWeights(t)
	for i := 2; i < len(rs); i++ { // exits in one /16, so that none can be another's middle
		rs[i].Addr = netip.MustParseAddrPort(fmt.Sprintf("45.10.0.%d:7000", i))
	}
	family(rs, 1, 9) // and the heaviest exit is one family with the only other middle
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	seen := exitsChosen(t, s, ExitChoice{}, 2000)
	if seen[9] > 0 {
		t.Fatalf("the exit with no middle beside it was chosen %d times", seen[9])
	}
	_, err := s.Pick(ExitChoice{Mode: Named, Value: "r9"})
	if !isErr(err, ErrNoMiddle, "no middle outside the guard's and exit's /16 and families") {
		t.Fatalf("named exit with no middle beside it: %v", err)
	}
}

// ExitAllows answers for one exit by its policy summary: relay 10 allows tcp/80 but not tcp/22 (the
// table TestExitErrors relies on), and a relay that is no exit allows nothing.
func TestExitAllows(t *testing.T) {
	s := newSelector(t, exitNet(t), NewGuardSet(), 1, nil)
	for _, c := range []struct {
		relay int
		port  uint16
		want  bool
	}{{10, 80, true}, {10, 22, false}, {2, 80, false}, {99, 80, false}} {
		if got := s.ExitAllows(testID(c.relay), ExitChoice{Port: c.port}); got != c.want {
			t.Errorf("r%d allows tcp/%d: %v, want %v", c.relay, c.port, got, c.want)
		}
	}
}
