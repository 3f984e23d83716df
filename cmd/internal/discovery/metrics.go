package discovery

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/directory"
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
	}
	for r := range numReasons {
		s.Refused[r.String()] = c.refused[r].Load()
	}
	return s
}

// collector exports the counters and the latest document's figures at each scrape.
type collector struct{ a *Authority }

var (
	descFound       = prometheus.NewDesc("meshvpn_discovery_relays_found", "Relay addresses announced on the DHT (addresses) and distinct identities their whois answers named (identities), in the last round.", []string{"kind"}, nil)
	descAccepted    = prometheus.NewDesc("meshvpn_discovery_descriptors_accepted_total", "Relay descriptors fetched and accepted.", nil, nil)
	descRefused     = prometheus.NewDesc("meshvpn_discovery_descriptors_refused_total", "Relay descriptors refused, by reason.", []string{"reason"}, nil)
	descWhois       = prometheus.NewDesc("meshvpn_discovery_whois_total", "Whois questions, by outcome.", []string{"result"}, nil)
	descProbes      = prometheus.NewDesc("meshvpn_discovery_probes_total", "Relay probes (one-hop circuit, probe cell, burst), by outcome: ok, failed, or overdue (a probe without an answer for its timeout, at most a period, at a round's deadline: a failed probe for that round; should it succeed later, it counts as ok too).", []string{"result"}, nil)
	descUncrawled   = prometheus.NewDesc("meshvpn_discovery_rounds_uncrawled_total", "Rounds signed without a crawl of their own (the last one was still running).", nil, nil)
	descPointer     = prometheus.NewDesc("meshvpn_discovery_pointer_publish_total", "Publications of the directory pointer on the DHT, by outcome.", []string{"result"}, nil)
	descDHTErrors   = prometheus.NewDesc("meshvpn_discovery_dht_errors_total", "Rounds whose relay lookup on the DHT failed.", nil, nil)
	descSerial      = prometheus.NewDesc("meshvpn_discovery_directory_serial", "Serial of the latest directory document.", nil, nil)
	descListed      = prometheus.NewDesc("meshvpn_discovery_directory_relays", "Relays the latest directory lists.", nil, nil)
	descFlags       = prometheus.NewDesc("meshvpn_discovery_directory_flag_relays", "Relays the latest directory lists with each flag.", []string{"flag"}, nil)
	descRoundLength = prometheus.NewDesc("meshvpn_discovery_round_seconds", "How long the last round took.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFound, descAccepted, descRefused, descWhois, descProbes, descPointer, descDHTErrors, descSerial, descListed, descFlags, descRoundLength, descUncrawled} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Stats()
	ch <- daemon.Gauge(descFound, float64(s.PeersFound), "addresses")
	ch <- daemon.Gauge(descFound, float64(s.RelaysNamed), "identities")
	ch <- daemon.Counter(descAccepted, s.Accepted)
	for reason, v := range s.Refused {
		ch <- daemon.Counter(descRefused, v, reason)
	}
	ch <- daemon.Counter(descWhois, s.WhoisAnswered, "answered")
	ch <- daemon.Counter(descWhois, s.WhoisNoAnswer, "no_answer")
	ch <- daemon.Counter(descWhois, s.WhoisWrongNetwork, "wrong_network")
	ch <- daemon.Counter(descProbes, s.ProbesOK, "ok")
	ch <- daemon.Counter(descProbes, s.ProbesFailed, "failed")
	ch <- daemon.Counter(descProbes, s.ProbesOverdue, "overdue")
	ch <- daemon.Counter(descUncrawled, s.RoundsUncrawled)
	ch <- daemon.Counter(descPointer, s.PointerOK, "ok")
	ch <- daemon.Counter(descPointer, s.PointerFailed, "failed")
	ch <- daemon.Counter(descDHTErrors, s.DHTErrors)
	ch <- daemon.Gauge(descRoundLength, float64(c.a.stats.roundMicros.Load())/1e6)
	p := c.a.latest.Load()
	if p == nil {
		return
	}
	ch <- daemon.Gauge(descSerial, float64(p.doc.Serial))
	ch <- daemon.Gauge(descListed, float64(len(p.doc.Entries)))
	for f := directory.Running; f <= directory.Degraded; f <<= 1 {
		ch <- daemon.Gauge(descFlags, float64(p.flags[f]), f.String())
	}
}
