package authority

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/netdir"
)

const (
	// MaxHistory bounds the probes kept per relay (ProbeConfig.History).
	MaxHistory = 10_000
	// ewmaWeight is the weight of each new successful probe in the moving averages.
	ewmaWeight = 0.3
	// forgetAfter is how long a relay that is no longer accepted stays in the database. It exceeds
	// descriptor.MaxAge, so that once its seq is forgotten its last descriptor is stale anyway.
	forgetAfter = 7 * 24 * time.Hour
)

// record is what the database keeps of a relay (JSON, in the relays bucket under its identity).
type record struct {
	FirstSeen  time.Time      `json:"first_seen"`
	LastSeen   time.Time      `json:"last_seen"` // last accepted
	Missed     int            `json:"missed"`
	Addr       netip.AddrPort `json:"addr"`       // where it was last found
	Descriptor []byte         `json:"descriptor"` // the last accepted
	Probes     []Probe        `json:"probes"`     // oldest first, at most probe.history
	Bandwidth  float64        `json:"bandwidth"`
	Latency    time.Duration  `json:"latency"`
}

// relayState is a relay as the authority holds it between rounds: its record, and its descriptor
// decoded.
type relayState struct {
	record
	desc   *descriptor.Descriptor
	digest [32]byte
}

// loadRelay decodes a record from the database.
func loadRelay(b []byte) (*relayState, error) {
	var s relayState
	if err := json.Unmarshal(b, &s.record); err != nil {
		return nil, err
	}
	d, err := descriptor.Parse(s.Descriptor)
	if err != nil {
		return nil, fmt.Errorf("stored descriptor: %w", err)
	}
	s.desc, s.digest = d, descriptor.Digest(s.Descriptor)
	return &s, nil
}

func (s *relayState) encode() ([]byte, error) { return json.Marshal(&s.record) }

// accept makes a newly accepted descriptor, found at addr, the relay's current one.
func (s *relayState) accept(f found, now time.Time) {
	if s.FirstSeen.IsZero() {
		s.FirstSeen = now
	}
	s.LastSeen, s.Missed, s.Addr = now, 0, f.addr
	s.Descriptor, s.desc, s.digest = f.raw, f.desc, descriptor.Digest(f.raw)
}

// addProbe records a probe, keeping the last history of them, and moves the averages.
func (s *relayState) addProbe(p Probe, history int) {
	s.Probes = append(s.Probes, p)
	if n := len(s.Probes) - history; n > 0 {
		s.Probes = slices.Delete(s.Probes, 0, n)
	}
	if !p.OK {
		return
	}
	s.Bandwidth = ewma(s.Bandwidth, p.Bandwidth)
	s.Latency = time.Duration(ewma(float64(s.Latency), float64(p.RTT)))
}

func ewma(avg, sample float64) float64 {
	if avg == 0 {
		return sample
	}
	return ewmaWeight*sample + (1-ewmaWeight)*avg
}

// info is what building a probe circuit to the relay needs: the keys of its descriptor, the address
// it was found at if the descriptor still lists it (else its preferred one), and its first rendezvous,
// if it is behind a NAT.
func (s *relayState) info() netdir.Relay {
	addr := s.desc.Addresses[0]
	if slices.Contains(s.desc.Addresses, s.Addr) {
		addr = s.Addr
	}
	return netdir.FromDescriptor(s.desc, addr)
}

// view is the relay as the flag rules see it at now.
func (s *relayState) view(now time.Time, networkID [32]byte) *RelayState {
	return &RelayState{
		Identity: s.desc.Identity, Digest: s.digest, Exit: s.desc.IsExit(),
		Valid:     s.desc.Check(now, networkID) == nil,
		FirstSeen: s.FirstSeen, Missed: s.Missed, Probes: s.Probes,
		Bandwidth: s.Bandwidth, Latency: s.Latency,
	}
}
