package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/network/link"
)

var (
	descLinkDrops = prometheus.NewDesc("meshvpn_link_drops_total",
		"Datagrams the node's link layer dropped, by reason (bad_mac, replay, unknown_index, malformed, too_short, garbage, ...): what arrives spoiled, replayed or foreign on the node's socket.",
		[]string{"reason"}, nil)
	descLinkPackets    = prometheus.NewDesc("meshvpn_link_packets_total", "Datagrams the node's socket read (in) and wrote (out), of every kind.", []string{"direction"}, nil)
	descLinkBytes      = prometheus.NewDesc("meshvpn_link_bytes_total", "Bytes of the datagrams the node's socket read (in) and wrote (out).", []string{"direction"}, nil)
	descLinkHandshakes = prometheus.NewDesc("meshvpn_link_handshakes_total", "Link handshakes initiated, completed, and failed (dials abandoned, messages refused after their DH).", []string{"result"}, nil)
)

// LinkMetrics returns a collector of a link node's counters, read from stats at each scrape. Every
// node with a link socket (relay, exit, client, discovery authority) serves them.
func LinkMetrics(stats func() link.Stats) prometheus.Collector { return linkCollector(stats) }

type linkCollector func() link.Stats

func (linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkDrops, descLinkPackets, descLinkBytes, descLinkHandshakes} {
		ch <- d
	}
}

func (c linkCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	for _, d := range s.DropsByReason() {
		ch <- Counter(descLinkDrops, d.Count, d.Reason)
	}
	ch <- Counter(descLinkPackets, s.PacketsIn, "in")
	ch <- Counter(descLinkPackets, s.PacketsOut, "out")
	ch <- Counter(descLinkBytes, s.BytesIn, "in")
	ch <- Counter(descLinkBytes, s.BytesOut, "out")
	ch <- Counter(descLinkHandshakes, s.HandshakesInitiated, "initiated")
	ch <- Counter(descLinkHandshakes, s.HandshakesCompleted, "completed")
	ch <- Counter(descLinkHandshakes, s.HandshakesFailed, "failed")
}
