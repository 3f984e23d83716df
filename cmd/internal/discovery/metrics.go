package discovery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/authority"
	"github.com/meshvpn/meshvpn/core/directory"
)

// collector exports the authority's counters and the latest document's figures at each scrape.
type collector struct{ a *authority.Authority }

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
	ch <- daemon.Gauge(descRoundLength, s.LastRound.Seconds())
	doc, _ := c.a.Latest()
	if doc == nil {
		return
	}
	ch <- daemon.Gauge(descSerial, float64(doc.Serial))
	ch <- daemon.Gauge(descListed, float64(len(doc.Entries)))
	for f := directory.Running; f <= directory.Degraded; f <<= 1 {
		n := 0
		for _, e := range doc.Entries {
			if e.Flags&f != 0 {
				n++
			}
		}
		ch <- daemon.Gauge(descFlags, float64(n), f.String())
	}
}
