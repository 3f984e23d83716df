package clientd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// collector exports the client's counters. It says nothing of destinations: only totals.
type collector struct{ d *Daemon }

var (
	descUp       = prometheus.NewDesc("meshvpn_client_circuit_up", "1 while the client has a working circuit.", nil, nil)
	descPackets  = prometheus.NewDesc("meshvpn_client_packets_total", "Packets through the tunnel, out (to the exit) and in.", []string{"direction"}, nil)
	descBytes    = prometheus.NewDesc("meshvpn_client_bytes_total", "Bytes through the tunnel, out (to the exit) and in.", []string{"direction"}, nil)
	descDrops    = prometheus.NewDesc("meshvpn_client_drops_total", "Packets the client did not carry, by reason.", []string{"reason"}, nil)
	descBuilds   = prometheus.NewDesc("meshvpn_client_circuit_builds_total", "Circuit builds that worked and that failed.", []string{"result"}, nil)
	descNAT      = prometheus.NewDesc("meshvpn_client_nat", "1 for the NAT mapping the client's socket was last found behind (none, endpoint-independent, address/port-dependent, unknown).", []string{"mapping"}, nil)
	descReroutes = prometheus.NewDesc("meshvpn_client_reroutes_total", "Rebuilds after a circuit died.", nil, nil)
	descGaps     = prometheus.NewDesc("meshvpn_client_cell_gaps_total", "Holes in the exit's layer counters on the cells that reached the client: counters skipped, and skipped ones that came late after all. Skipped minus late is the cells exits sent that never arrived: lost on a link, or dropped by a hop on the way, which can mark a flow for a colluding hop (docs/threat-model.md).", []string{"kind"}, nil)
	descRatchets = prometheus.NewDesc("meshvpn_client_key_ratchets_total", "Layer keys of circuits moved to their next generation on schedule (ratchet: the client's forward keys) and previous generations erased after the window (erased: the hops' backward keys).", []string{"event"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGaps
	describeKillSwitch(ch)
	for _, d := range []*prometheus.Desc{descNAT, descUp, descPackets, descBytes, descDrops, descBuilds, descReroutes, descRatchets} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.status(false)
	if cl := c.d.client; cl != nil {
		g := cl.Stats().CellGaps
		ch <- daemon.Counter(descGaps, g.Skipped, "skipped")
		ch <- daemon.Counter(descGaps, g.Late, "late")
	}
	up := 0.0
	if s.State == "connected" {
		up = 1
	}
	ch <- daemon.Gauge(descUp, up)
	ch <- daemon.Counter(descPackets, s.Traffic.PacketsOut, "out")
	ch <- daemon.Counter(descPackets, s.Traffic.PacketsIn, "in")
	ch <- daemon.Counter(descBytes, s.Traffic.BytesOut, "out")
	ch <- daemon.Counter(descBytes, s.Traffic.BytesIn, "in")
	for reason, v := range s.Drops {
		ch <- daemon.Counter(descDrops, v, reason)
	}
	ch <- daemon.Counter(descBuilds, s.Builds, "ok")
	ch <- daemon.Counter(descBuilds, s.BuildFailures, "failed")
	ch <- daemon.Counter(descReroutes, uint64(len(s.Reroutes)))
	ch <- daemon.Counter(descRatchets, s.KeyRatchets, "ratchet")
	ch <- daemon.Counter(descRatchets, s.KeysErased, "erased")
	if s.NAT != nil && s.NAT.Mapping != "" {
		ch <- daemon.Gauge(descNAT, 1, s.NAT.Mapping)
	}
	collectKillSwitch(ch, s.KillSwitch)
}
