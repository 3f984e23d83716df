package authority

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

var testRules = Rules{
	StableAge: 24 * time.Hour, StableRatio: 0.9, FastFraction: 0.125,
	LatencyFactor: 3, LatencyFloor: 10 * time.Millisecond, DropFailures: 3, DropMissed: 3,
}

var ruleNow = time.Unix(1_800_000_000, 0)

// history makes probes from a pattern, oldest first: '+' a success, '-' a failure.
func history(pattern string) []Probe {
	ps := make([]Probe, len(pattern))
	for i, c := range pattern {
		ps[i] = Probe{At: ruleNow.Add(time.Duration(i-len(pattern)) * 10 * time.Minute), OK: c == '+'}
		if ps[i].OK {
			ps[i].RTT, ps[i].Bandwidth = time.Millisecond, 1e6
		}
	}
	return ps
}

// synthetic is a relay known for age with the probe pattern, 1 MB/s and 1 ms.
func synthetic(n byte, age time.Duration, pattern string) *RelayState {
	return &RelayState{
		Identity: keys.IdentityPublic{n}, Digest: [32]byte{n}, Valid: true,
		FirstSeen: ruleNow.Add(-age), Probes: history(pattern), Bandwidth: 1e6, Latency: time.Millisecond,
	}
}

// flagsOf evaluates one relay alone and returns whether it is listed, and its flags.
func flagsOf(s *RelayState) (bool, directory.Flags) {
	es := testRules.Evaluate([]*RelayState{s}, ruleNow)
	if len(es) == 0 {
		return false, 0
	}
	return true, es[0].Flags
}

func TestFlagsFromProbeHistory(t *testing.T) {
	const R, D, S = directory.Running, directory.Degraded, directory.Stable
	young, old := time.Hour, 48*time.Hour
	for _, tc := range []struct {
		name    string
		age     time.Duration
		pattern string
		missed  int
		listed  bool
		set     directory.Flags // must be set
		unset   directory.Flags // must not be set
	}{
		{"new and answering", young, "+", 0, true, R, D | S},
		{"never answered", young, "--", 0, false, 0, 0},
		{"last probe failed: degraded within one period", old, "++++++++++-", 0, true, D, R},
		{"two failures in a row", old, "++++++++--", 0, true, D, R},
		{"three failures in a row: dropped", old, "+++++++---", 0, false, 0, 0},
		{"back after three failures", old, "+++++++---+", 0, true, R | D, 0},
		{"one failure among the last three", old, "++++++++-++", 0, true, R | D, 0},
		{"a failure before the last three", old, "+++++++-+++", 0, true, R | S, D},
		{"healthy for long", old, "++++++++++++", 0, true, R | S, D},
		{"healthy but young", young, "++++++++++++", 0, true, R, D | S},
		{"ninety per cent ok is stable", old, "+++++-+++++", 0, true, R | S, D},
		{"eighty per cent ok is not", old, "++++-+-++++", 0, true, R, S | D},
		{"missing for two periods", old, "+++++++++++", 2, true, R | S, D},
		{"missing for three periods: dropped", old, "+++++++++++", 3, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := synthetic(1, tc.age, tc.pattern)
			s.Missed = tc.missed
			listed, f := flagsOf(s)
			if listed != tc.listed {
				t.Fatalf("listed %v, want %v (flags %s)", listed, tc.listed, f)
			}
			if f&tc.set != tc.set || f&tc.unset != 0 {
				t.Fatalf("flags %s: want %s set and %s unset", f, tc.set, tc.unset)
			}
		})
	}
}

// TestSilentRelay plays a relay that stops answering, one failed probe per period: Degraded after the
// first, gone after the third.
func TestSilentRelay(t *testing.T) {
	s := synthetic(1, 48*time.Hour, "++++++++++")
	for period := 1; period <= 3; period++ {
		s.Probes = append(s.Probes, Probe{At: ruleNow, OK: false})
		s.Missed = period
		listed, f := flagsOf(s)
		switch {
		case period < 3 && (!listed || f&directory.Degraded == 0 || f&directory.Running != 0):
			t.Fatalf("period %d of silence: listed %v, flags %s; want Degraded, not Running", period, listed, f)
		case period == 3 && listed:
			t.Fatalf("period 3 of silence: still listed with %s", f)
		}
	}
}

func TestInvalidDescriptorIsNotListed(t *testing.T) {
	s := synthetic(1, time.Hour, "+")
	s.Valid = false
	if listed, _ := flagsOf(s); listed {
		t.Fatal("a relay whose descriptor is not valid now is listed")
	}
}

func TestFastGuardExitByBandwidth(t *testing.T) {
	// Lower median of 1, 10, 80, 100, 120 kB/s is 80: Fast from 10 (1/8 of 80), Guard from 80.
	bws := []float64{1e3, 10e3, 80e3, 100e3, 120e3}
	var relays []*RelayState
	for i, bw := range bws {
		s := synthetic(byte(5-i), 48*time.Hour, "++++++++++")
		s.Bandwidth = bw
		relays = append(relays, s)
	}
	relays[4].Exit = true
	young := synthetic(9, time.Hour, "+")
	young.Bandwidth = 1e9
	relays = append(relays, young)

	es := testRules.Evaluate(relays, ruleNow)
	if len(es) != len(relays) {
		t.Fatalf("%d entries for %d relays", len(es), len(relays))
	}
	for i := 1; i < len(es); i++ {
		if string(es[i-1].Identity[:]) >= string(es[i].Identity[:]) {
			t.Fatal("entries are not sorted by identity")
		}
	}
	byID := map[keys.IdentityPublic]directory.Entry{}
	for _, e := range es {
		byID[e.Identity] = e
	}
	want := []struct {
		fast, guard, exit bool
		weight            uint32
	}{{false, false, false, 1}, {true, false, false, 10}, {true, true, false, 80}, {true, true, false, 100}, {true, true, true, 120}}
	for i, w := range want {
		e := byID[relays[i].Identity]
		if got := e.Flags&directory.Fast != 0; got != w.fast {
			t.Errorf("%v B/s: Fast %v, want %v", bws[i], got, w.fast)
		}
		if got := e.Flags&directory.Guard != 0; got != w.guard {
			t.Errorf("%v B/s: Guard %v, want %v", bws[i], got, w.guard)
		}
		if got := e.Flags&directory.Exit != 0; got != w.exit {
			t.Errorf("%v B/s: Exit %v, want %v", bws[i], got, w.exit)
		}
		if e.Weight != w.weight || e.LatencyMicros != 1000 {
			t.Errorf("%v B/s: weight %d, latency %d µs; want %d, 1000", bws[i], e.Weight, e.LatencyMicros, w.weight)
		}
	}
	// The fastest relay is not a Guard until it is Stable.
	if f := byID[young.Identity].Flags; f&directory.Fast == 0 || f&(directory.Guard|directory.Stable) != 0 {
		t.Errorf("a fast young relay has flags %s; want Fast, not Stable or Guard", f)
	}
}

func TestDegradedByLatency(t *testing.T) {
	lat := []time.Duration{time.Millisecond, time.Millisecond, 2 * time.Millisecond, 8 * time.Millisecond, 50 * time.Millisecond}
	var relays []*RelayState
	for i, l := range lat {
		s := synthetic(byte(i+1), 48*time.Hour, "++++++++++")
		s.Latency = l
		relays = append(relays, s)
	}
	// Lower median: 2 ms. 8 ms is more than 3 times that but under the 10 ms floor; 50 ms is past both.
	for i, e := range testRules.Evaluate(relays, ruleNow) {
		if got, want := e.Flags&directory.Degraded != 0, i == 4; got != want {
			t.Errorf("latency %v: Degraded %v, want %v", lat[i], got, want)
		}
	}
}

func TestWeightAndMicros(t *testing.T) {
	for bw, want := range map[float64]uint32{0: 0, -1: 0, math.NaN(): 0, 1: 1, 1000: 1, 1001: 2, 1e15: math.MaxUint32} {
		if got := weight(bw); got != want {
			t.Errorf("weight(%v) = %d, want %d", bw, got, want)
		}
	}
	for d, want := range map[time.Duration]uint32{0: 0, time.Nanosecond: 1, time.Millisecond: 1000, 100 * time.Hour: math.MaxUint32} {
		if got := micros(d); got != want {
			t.Errorf("micros(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestAddProbeKeepsHistoryAndAverages(t *testing.T) {
	var s relayState
	s.addProbe(Probe{OK: true, RTT: 10 * time.Millisecond, Bandwidth: 1000}, 3)
	if s.Bandwidth != 1000 || s.Latency != 10*time.Millisecond {
		t.Fatalf("first sample: %v B/s, %v; want it as it is", s.Bandwidth, s.Latency)
	}
	s.addProbe(Probe{OK: false}, 3)
	if s.Bandwidth != 1000 {
		t.Fatal("a failed probe moved the average")
	}
	s.addProbe(Probe{OK: true, RTT: 20 * time.Millisecond, Bandwidth: 2000}, 3)
	if s.Bandwidth != 1300 || s.Latency != 13*time.Millisecond {
		t.Fatalf("after 1000 and 2000: %v B/s, %v; want 1300, 13ms (weight %v)", s.Bandwidth, s.Latency, ewmaWeight)
	}
	s.addProbe(Probe{OK: true, RTT: time.Millisecond, Bandwidth: 1}, 3)
	if len(s.Probes) != 3 || s.Probes[0].OK != false {
		t.Fatalf("history %+v: want the last 3", s.Probes)
	}
}

func TestAtMostMaxEntries(t *testing.T) {
	relays := make([]*RelayState, directory.MaxEntries+2)
	for i := range relays {
		s := synthetic(0, time.Hour, "+")
		s.Identity = keys.IdentityPublic{byte(i >> 16), byte(i >> 8), byte(i)}
		s.Bandwidth = float64(1000 * (i + 1))
		relays[i] = s
	}
	es := testRules.Evaluate(relays, ruleNow)
	if len(es) != directory.MaxEntries {
		t.Fatalf("%d entries", len(es))
	}
	for _, e := range es {
		if e.Weight <= 2 {
			t.Fatalf("a lightest relay (weight %d) went in", e.Weight)
		}
	}
}

// withMinGuards is testRules with the default min_guards.
func withMinGuards() Rules {
	r := testRules
	r.MinGuards = 3
	return r
}

// guardsOf returns the relays (by identity byte) that entries flag Guard.
func guardsOf(es []directory.Entry) []byte {
	var ids []byte
	for _, e := range es {
		if e.Flags&directory.Guard != 0 {
			ids = append(ids, e.Identity[0])
		}
	}
	return ids
}

// TestYoungNetworkHasGuards: a network whose relays all started within the hour, at the default
// stable_age of 24 h, still has Guards (the faster half of them), or no client could enter it.
func TestYoungNetworkHasGuards(t *testing.T) {
	var relays []*RelayState
	for i, bw := range []float64{1e6, 2e6, 3e6, 4e6, 5e6} {
		s := synthetic(byte(i+1), 10*time.Minute, "+")
		s.Bandwidth = bw
		relays = append(relays, s)
	}
	relays[4].Exit = true
	es := withMinGuards().Evaluate(relays, ruleNow)
	// Lower median bandwidth 3 MB/s: relays 3, 4 and 5 (the exit) are Guards.
	if got := guardsOf(es); string(got) != string([]byte{3, 4, 5}) {
		t.Fatalf("Guards %v in a network of relays 10 minutes old; want [3 4 5]", got)
	}
	for _, e := range es {
		if e.Flags&directory.Stable == 0 {
			t.Errorf("relay %d: flags %s; want Stable, as old as the median relay", e.Identity[0], e.Flags)
		}
	}
	if got := guardsOf(testRules.Evaluate(relays, ruleNow)); len(got) != 0 {
		t.Fatalf("min_guards 0: Guards %v; want none before stable_age", got)
	}
}

// TestYoungNetworkNewcomerWaits: on a young network, relays that were there first keep Guard; a fast
// relay that joins later is not Stable (younger than the median) and takes nothing from them, and
// one that fails probes is no Guard however old.
func TestYoungNetworkNewcomerWaits(t *testing.T) {
	var relays []*RelayState
	for i := range 4 {
		relays = append(relays, synthetic(byte(i+1), 6*time.Hour, "++++++++++"))
	}
	relays[3].Probes = history("+++-++-+++") // 80%: under stable_ratio
	late := synthetic(9, 10*time.Minute, "+")
	late.Bandwidth = 1e9
	relays = append(relays, late)
	es := withMinGuards().Evaluate(relays, ruleNow)
	if got := guardsOf(es); string(got) != string([]byte{1, 2, 3}) {
		t.Fatalf("Guards %v; want [1 2 3]: not the flapping relay 4, not the newcomer 9", got)
	}
}

// TestMatureNetworkKeepsTheAbsoluteRule: once min_guards relays are Guards by stable_age, a young
// relay is not Stable however the network's ages lie.
func TestMatureNetworkKeepsTheAbsoluteRule(t *testing.T) {
	var relays []*RelayState
	for i := range 3 {
		relays = append(relays, synthetic(byte(i+1), 48*time.Hour, "++++++++++"))
	}
	for i := range 4 {
		relays = append(relays, synthetic(byte(10+i), time.Hour, "+"))
	}
	es := withMinGuards().Evaluate(relays, ruleNow)
	if got := guardsOf(es); string(got) != string([]byte{1, 2, 3}) {
		t.Fatalf("Guards %v; want the three relays older than stable_age", got)
	}
	for _, e := range es {
		if e.Identity[0] >= 10 && e.Flags&directory.Stable != 0 {
			t.Errorf("relay %d, an hour old, is Stable on a network with enough Guards", e.Identity[0])
		}
	}
}

func TestMinGuardsValidated(t *testing.T) {
	r := withMinGuards()
	r.MinGuards = -1
	if err := r.validate(); err == nil || !strings.Contains(err.Error(), "flags.min_guards") {
		t.Fatalf("min_guards -1: %v", err)
	}
}
