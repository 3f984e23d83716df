package authority

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Rules are the thresholds of the flag rules (see the package documentation).
type Rules struct {
	StableAge     time.Duration
	StableRatio   float64
	FastFraction  float64
	LatencyFactor float64
	LatencyFloor  time.Duration
	DropFailures  int // failed probes in a row that drop a relay; also the Degraded window
	DropMissed    int // periods not found that drop a relay
	// MinGuards is how many Guards a document should have: while fewer relays qualify (a young
	// network, none of whose relays is stable_age old yet), Stable's age threshold drops to the
	// median age of the listed relays. 0: never.
	MinGuards int
}

func (r Rules) validate() error {
	var errs []error
	if r.StableAge < 0 {
		errs = append(errs, fmt.Errorf("flags.stable_age %v is negative", r.StableAge))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"flags.stable_ratio", r.StableRatio}, {"flags.fast_fraction", r.FastFraction}} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("%s %v: want 0 to 1", f.name, f.v))
		}
	}
	if !(r.LatencyFactor >= 1) || math.IsInf(r.LatencyFactor, 0) {
		errs = append(errs, fmt.Errorf("flags.degraded_latency_factor %v: want at least 1", r.LatencyFactor))
	}
	if r.LatencyFloor < 0 {
		errs = append(errs, fmt.Errorf("flags.degraded_latency_floor %v is negative", r.LatencyFloor))
	}
	if r.MinGuards < 0 {
		errs = append(errs, fmt.Errorf("flags.min_guards %d is negative", r.MinGuards))
	}
	if r.DropFailures < 1 || r.DropMissed < 1 {
		errs = append(errs, fmt.Errorf("flags.drop_after_failures %d, flags.drop_after_missed %d: want at least 1", r.DropFailures, r.DropMissed))
	}
	return errors.Join(errs...)
}

// Probe is the result of probing a relay once.
type Probe struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Build is how long the one-hop circuit took to build (link handshake, if the link was down, and
	// CREATE); RTT the round trip of one probe cell on it; Bandwidth the burst's throughput in bytes/s.
	Build     time.Duration `json:"build,omitempty"`
	RTT       time.Duration `json:"rtt,omitempty"`
	Bandwidth float64       `json:"bw,omitempty"`
}

// RelayState is what the flag rules read of one relay.
type RelayState struct {
	Identity keys.IdentityPublic
	Digest   [32]byte // of the descriptor the entry names
	Exit     bool     // the descriptor has an exit summary
	Valid    bool     // the descriptor is valid now (descriptor.Check)
	// FirstSeen is when the relay was first accepted; Missed the periods since it was last accepted.
	FirstSeen time.Time
	Missed    int
	// Probes are the last probes, oldest first.
	Probes []Probe
	// Bandwidth (bytes/s) and Latency are the moving averages of successful probes; 0 = not measured.
	Bandwidth float64
	Latency   time.Duration
}

// failedInARow counts the failed probes at the end of the history.
func (s *RelayState) failedInARow() int {
	n := 0
	for i := len(s.Probes) - 1; i >= 0 && !s.Probes[i].OK; i-- {
		n++
	}
	return n
}

// okRatio is the fraction of the probes on record that succeeded.
func (s *RelayState) okRatio() float64 {
	if len(s.Probes) == 0 {
		return 0
	}
	ok := 0
	for _, p := range s.Probes {
		if p.OK {
			ok++
		}
	}
	return float64(ok) / float64(len(s.Probes))
}

// Listed reports whether the relay belongs in the directory at all.
func (r Rules) Listed(s *RelayState) bool {
	return s.Valid && s.Missed < r.DropMissed && s.failedInARow() < r.DropFailures &&
		slices.ContainsFunc(s.Probes, func(p Probe) bool { return p.OK })
}

// Evaluate returns the directory entries for relays at now: the listed ones (at most
// directory.MaxEntries, the heaviest), sorted by identity, with their flags, weight and latency.
func (r Rules) Evaluate(relays []*RelayState, now time.Time) []directory.Entry {
	var listed []*RelayState
	for _, s := range relays {
		if r.Listed(s) {
			listed = append(listed, s)
		}
	}
	medBW := lowerMedian(listed, func(s *RelayState) float64 { return s.Bandwidth })
	medLat := lowerMedian(listed, func(s *RelayState) float64 { return float64(s.Latency) })
	flags := func(stableAge time.Duration) ([]directory.Flags, int) {
		fs, guards := make([]directory.Flags, len(listed)), 0
		for i, s := range listed {
			fs[i] = r.flags(s, now, stableAge, medBW, medLat)
			if fs[i]&directory.Guard != 0 {
				guards++
			}
		}
		return fs, guards
	}
	fs, guards := flags(r.StableAge)
	if guards < r.MinGuards {
		// A young network: see youngStableAge.
		if young := r.youngStableAge(listed, now); young < r.StableAge {
			fs, _ = flags(young)
		}
	}
	entries := make([]directory.Entry, 0, len(listed))
	for i, s := range listed {
		entries = append(entries, directory.Entry{
			Identity: s.Identity, Descriptor: s.Digest, Flags: fs[i],
			Weight: weight(s.Bandwidth), LatencyMicros: micros(s.Latency),
		})
	}
	if len(entries) > directory.MaxEntries {
		// More relays than a document holds: the heaviest go in.
		slices.SortStableFunc(entries, func(a, b directory.Entry) int { return cmp.Compare(b.Weight, a.Weight) })
		entries = entries[:directory.MaxEntries]
	}
	slices.SortFunc(entries, func(a, b directory.Entry) int { return bytes.Compare(a.Identity[:], b.Identity[:]) })
	return entries
}

// youngStableAge is Stable's age threshold for a network with fewer than MinGuards Guards: the lower
// median of the listed relays' ages, so that the older half of the relays counts as Stable (see "A
// young network" in the package documentation for why).
func (r Rules) youngStableAge(listed []*RelayState, now time.Time) time.Duration {
	return time.Duration(lowerMedian(listed, func(s *RelayState) float64 {
		// At least 1 ns, so that a relay first seen this instant is measured (lowerMedian skips 0).
		return float64(max(now.Sub(s.FirstSeen), 1))
	}))
}

// flags applies the rules to one listed relay, with Stable's age threshold stableAge, given the
// medians of the listed relays' bandwidth and latency (0 when none is measured).
func (r Rules) flags(s *RelayState, now time.Time, stableAge time.Duration, medBW, medLat float64) directory.Flags {
	var f directory.Flags
	last := s.Probes[len(s.Probes)-1]
	if last.OK {
		f |= directory.Running
	}
	window := s.Probes[max(0, len(s.Probes)-r.DropFailures):]
	if slices.ContainsFunc(window, func(p Probe) bool { return !p.OK }) {
		f |= directory.Degraded
	}
	if s.Latency > 0 && medLat > 0 && float64(s.Latency) > r.LatencyFactor*medLat && s.Latency > r.LatencyFloor {
		f |= directory.Degraded
	}
	stable := now.Sub(s.FirstSeen) >= stableAge && s.okRatio() >= r.StableRatio
	if stable {
		f |= directory.Stable
	}
	fast := s.Bandwidth > 0 && s.Bandwidth >= r.FastFraction*medBW
	if fast {
		f |= directory.Fast
	}
	if stable && fast && s.Bandwidth >= medBW {
		f |= directory.Guard
	}
	if s.Exit {
		f |= directory.Exit
	}
	return f
}

// lowerMedian returns the lower median of the measured (non-zero) values, or 0 if none is.
func lowerMedian(relays []*RelayState, value func(*RelayState) float64) float64 {
	var vs []float64
	for _, s := range relays {
		if v := value(s); v > 0 {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

// weight is a bandwidth in bytes/s as an entry's weight: kB/s, rounded up, at least 1 once measured.
func weight(bytesPerSecond float64) uint32 {
	if !(bytesPerSecond > 0) {
		return 0
	}
	return uint32(min(math.Ceil(bytesPerSecond/1000), math.MaxUint32))
}

// micros is a latency as an entry's LatencyMicros: at least 1 once measured.
func micros(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(max(d.Microseconds(), 1), math.MaxUint32))
}
