package authority

import (
	"sync/atomic"
	"time"
)

// counters are the authority's event counts since start, and the last round's sizes.
type counters struct {
	accepted                                        atomic.Uint64
	refused                                         [numReasons]atomic.Uint64
	whoisAnswered, whoisNoAnswer, whoisWrongNetwork atomic.Uint64
	probesOK, probesFailed, probesOverdue           atomic.Uint64
	roundsUncrawled                                 atomic.Uint64
	pointerOK, pointerFailed                        atomic.Uint64
	dhtErrors                                       atomic.Uint64
	peersFound, relaysNamed, roundMicros            atomic.Uint64 // of the last round
}

// Stats is a snapshot of an authority's counters.
type Stats struct {
	// PeersFound and RelaysNamed are the last round's announced addresses and the distinct identities
	// their whois answers named.
	PeersFound, RelaysNamed uint64
	// Accepted counts descriptors accepted; Refused those refused, by reason (the metric's labels).
	Accepted uint64
	Refused  map[string]uint64
	// ProbesOK and ProbesFailed count probes; ProbesOverdue failed probes of relays that had not
	// answered a probe still running for probe.timeout (at most a period) at a round's deadline
	// (should that probe succeed later, it counts in ProbesOK too).
	ProbesOK, ProbesFailed, ProbesOverdue uint64
	// RoundsUncrawled counts rounds signed without a crawl of their own: the one running had not
	// ended by the time the round had to probe.
	RoundsUncrawled uint64
	// Whois answers: from this network, none in time, from another network.
	WhoisAnswered, WhoisNoAnswer, WhoisWrongNetwork uint64
	// PointerOK and PointerFailed count the directory pointer's publications on the DHT.
	PointerOK, PointerFailed uint64
	// DHTErrors counts rounds whose relay lookup failed.
	DHTErrors uint64
	// LastRound is how long the last round took.
	LastRound time.Duration
}

// Stats returns a snapshot of the counters.
func (a *Authority) Stats() Stats {
	c := &a.stats
	s := Stats{
		PeersFound: c.peersFound.Load(), RelaysNamed: c.relaysNamed.Load(),
		Accepted: c.accepted.Load(), Refused: make(map[string]uint64, numReasons),
		ProbesOK: c.probesOK.Load(), ProbesFailed: c.probesFailed.Load(), ProbesOverdue: c.probesOverdue.Load(),
		RoundsUncrawled: c.roundsUncrawled.Load(),
		WhoisAnswered:   c.whoisAnswered.Load(), WhoisNoAnswer: c.whoisNoAnswer.Load(), WhoisWrongNetwork: c.whoisWrongNetwork.Load(),
		PointerOK: c.pointerOK.Load(), PointerFailed: c.pointerFailed.Load(), DHTErrors: c.dhtErrors.Load(),
		LastRound: time.Duration(c.roundMicros.Load()) * time.Microsecond,
	}
	for r := range numReasons {
		s.Refused[r.String()] = c.refused[r].Load()
	}
	return s
}
