package dhtboot

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// collector exports the DHT node's and the STUN server's counters, read from their snapshots at each
// scrape.
type collector struct{ n *Node }

var (
	descPackets    = prometheus.NewDesc("meshvpn_dht_packets_total", "DHT datagrams received (in) and sent (out).", []string{"direction"}, nil)
	descDropped    = prometheus.NewDesc("meshvpn_dht_dropped_total", "DHT datagrams dropped as malformed or hostile before the DHT engine saw them.", nil, nil)
	descQueries    = prometheus.NewDesc("meshvpn_dht_queries_total", "DHT queries received (in) and sent (out), of every kind.", []string{"direction"}, nil)
	descBEP44      = prometheus.NewDesc("meshvpn_dht_item_queries_total", "BEP 44 get and put queries received (in) and sent (out; puts: those accepted).", []string{"query", "direction"}, nil)
	descAnnounces  = prometheus.NewDesc("meshvpn_dht_announces_total", "announce_peer queries accepted from others (in) and by others (out).", []string{"direction"}, nil)
	descIntroduced = prometheus.NewDesc("meshvpn_dht_introduced_total", "Querying nodes pinged at once so that they can be handed out to others.", nil, nil)
	descTable      = prometheus.NewDesc("meshvpn_dht_table_nodes", "Nodes in the routing table: all of them, and the good ones (answered in the last 15 minutes).", []string{"state"}, nil)
	descPeers      = prometheus.NewDesc("meshvpn_dht_peers_stored", "Peers stored for others' announces.", nil, nil)
	descItems      = prometheus.NewDesc("meshvpn_dht_items_stored", "BEP 44 items stored for others.", nil, nil)
	descSTUN       = prometheus.NewDesc("meshvpn_stun_requests_total", "STUN datagrams: Binding requests answered, Binding requests answered 420 (unknown_attribute: they asked for what this server does not do, such as RFC 5780's CHANGE-REQUEST), datagrams refused (not a Binding request), requests not answered over the rate limit.", []string{"result"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descDropped, descQueries, descBEP44, descAnnounces, descIntroduced, descTable, descPeers, descItems, descSTUN} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.n.dht.Stats()
	ch <- daemon.Counter(descPackets, d.PacketsIn, "in")
	ch <- daemon.Counter(descPackets, d.PacketsOut, "out")
	ch <- daemon.Counter(descDropped, d.Dropped)
	ch <- daemon.Counter(descQueries, d.QueriesIn, "in")
	ch <- daemon.Counter(descQueries, d.QueriesOut, "out")
	ch <- daemon.Counter(descBEP44, d.GetsIn, "get", "in")
	ch <- daemon.Counter(descBEP44, d.GetsOut, "get", "out")
	ch <- daemon.Counter(descBEP44, d.PutsIn, "put", "in")
	ch <- daemon.Counter(descBEP44, d.PutsOut, "put", "out")
	ch <- daemon.Counter(descAnnounces, d.AnnouncesIn, "in")
	ch <- daemon.Counter(descAnnounces, d.AnnouncesOut, "out")
	ch <- daemon.Counter(descIntroduced, d.Introduced)
	ch <- daemon.Gauge(descTable, float64(d.Nodes), "all")
	ch <- daemon.Gauge(descTable, float64(d.GoodNodes), "good")
	ch <- daemon.Gauge(descPeers, float64(d.PeersStored))
	ch <- daemon.Gauge(descItems, float64(d.ItemsStored))
	if c.n.stun == nil {
		return
	}
	s := c.n.stun.Stats()
	ch <- daemon.Counter(descSTUN, s.Answered, "answered")
	ch <- daemon.Counter(descSTUN, s.Unknown, "unknown_attribute")
	ch <- daemon.Counter(descSTUN, s.Refused, "refused")
	ch <- daemon.Counter(descSTUN, s.Limited, "limited")
}
