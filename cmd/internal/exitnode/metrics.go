package exitnode

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/network/link"
)

// collector exports the relay's and the exit's counters, read from their snapshots at each scrape.
type collector struct{ n *Node }

var (
	descCells      = prometheus.NewDesc("meshvpn_relay_cells_total", "Cells the relay received (in) and sent (out).", []string{"direction"}, nil)
	descCircuits   = prometheus.NewDesc("meshvpn_relay_circuits", "Circuits open at the relay.", nil, nil)
	descCircEvents = prometheus.NewDesc("meshvpn_relay_circuit_events_total", "Circuits created and destroyed (reclaimed: destroyed at the memory bound, also counted as destroyed), extends made and failed.", []string{"event"}, nil)
	descRelayDrops = prometheus.NewDesc("meshvpn_relay_drops_total", "Cells the relay dropped, by reason.", []string{"reason"}, nil)
	descGaps       = prometheus.NewDesc("meshvpn_relay_cell_gaps_total", "Holes in the forward layer counters of the circuits that end at this relay (as their exit): counters skipped, and skipped ones that came late after all. Skipped minus late is the cells clients sent that never arrived: lost on a link, or dropped by a hop on the way, which can mark a flow for a colluding hop (docs/threat-model.md).", []string{"kind"}, nil)
	descRatchets   = prometheus.NewDesc("meshvpn_relay_key_ratchets_total", "Layer keys of circuits moved to their next generation on schedule (ratchet: the relay's backward keys) and previous generations erased after the window (erased: clients' forward keys).", []string{"event"}, nil)
	descSessions   = prometheus.NewDesc("meshvpn_exit_sessions", "Exit sessions held (open circuits and those in their grace period).", nil, nil)
	descSessEvents = prometheus.NewDesc("meshvpn_exit_session_events_total", "Exit sessions opened, re-attached by a rebuilt circuit, and expired.", []string{"event"}, nil)
	descExitPkts   = prometheus.NewDesc("meshvpn_exit_packets_total", "Packets the exit passed to the internet (out) and back to clients (in).", []string{"direction"}, nil)
	descExitDrops  = prometheus.NewDesc("meshvpn_exit_drops_total", "Packets the exit dropped, by reason.", []string{"reason"}, nil)
	descWhois      = prometheus.NewDesc("meshvpn_relay_whois_total", "Whois questions from discovery authorities answered, and not answered for the rate limit.", []string{"result"}, nil)
	descPublished  = prometheus.NewDesc("meshvpn_descriptor_publications_total", "Descriptor publications on the DHT that worked and that failed.", []string{"result"}, nil)
	descNAT        = prometheus.NewDesc("meshvpn_node_nat", "1 for the NAT mapping the node's socket was last found behind (none, endpoint-independent, address/port-dependent, unknown).", []string{"mapping"}, nil)
	descLinks      = prometheus.NewDesc("meshvpn_node_links", "Live links by path: direct, punched (a hole punched with a rendezvous's help) or relayed (through a rendezvous).", []string{"path"}, nil)
	descReachable  = prometheus.NewDesc("meshvpn_node_rendezvous_registered", "1 while this node, behind a NAT, is registered with a rendezvous.", nil, nil)
	descDNS        = prometheus.NewDesc("meshvpn_exit_dns_queries_total", "Queries to the tunnel resolver, by what became of them: answered (by this host's resolver), local (a private or local name: NXDOMAIN without asking), refused (REFUSED, NOTIMP, FORMERR), servfail (this host's resolver failed), malformed, too_big, busy (too many in flight: dropped), tcp (refused: answers come over UDP).", []string{"result"}, nil)
	descDenied     = prometheus.NewDesc("meshvpn_exit_denied_total", "Packets the exit policy refused, by the rule or protection that refused them.", []string{"reason"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGaps
	for _, d := range []*prometheus.Desc{descLinks, descReachable, descNAT, descWhois, descPublished, descCells, descCircuits, descCircEvents, descRatchets, descRelayDrops, descSessions, descSessEvents, descExitPkts, descExitDrops, descDenied, descDNS} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.n.relay.Stats()
	ch <- daemon.Counter(descGaps, r.ExitGaps.Skipped, "skipped")
	ch <- daemon.Counter(descGaps, r.ExitGaps.Late, "late")
	ch <- daemon.Counter(descCells, r.CellsIn, "in")
	ch <- daemon.Counter(descCells, r.CellsOut, "out")
	ch <- daemon.Gauge(descCircuits, float64(r.CircuitsOpen))
	ch <- daemon.Counter(descCircEvents, r.CircuitsCreated, "created")
	ch <- daemon.Counter(descCircEvents, r.CircuitsDestroyed, "destroyed")
	ch <- daemon.Counter(descCircEvents, r.Extends, "extend")
	ch <- daemon.Counter(descCircEvents, r.ExtendFail, "extend_failed")
	ch <- daemon.Counter(descRatchets, r.KeyRatchets, "ratchet")
	ch <- daemon.Counter(descRatchets, r.KeysErased, "erased")
	ch <- daemon.Counter(descCircEvents, r.CircuitsReclaimed, "reclaimed")
	for reason, v := range map[string]uint64{
		"bad_mac": r.DropBadMAC, "replay": r.DropReplay, "malformed": r.DropMalformed,
		"unknown_circuit": r.DropUnknownCircuit, "protocol": r.DropProtocol, "rate_limited": r.DropRateLimited,
		"queue_full": r.DropQueueFull, "no_exit": r.DropNoExit, "other": r.DropOther,
		"link_circuits": r.DropLinkCircuits, "create_rate": r.DropCreateRate, "memory": r.DropMemory,
		"destroy_reason": r.DropDestroyReason,
	} {
		ch <- daemon.Counter(descRelayDrops, v, reason)
	}
	for kind, count := range c.n.relay.Paths() {
		ch <- daemon.Gauge(descLinks, float64(count), link.PathKind(kind).String())
	}
	registered := 0.0
	if _, ok := c.n.Rendezvous(); ok {
		registered = 1
	}
	ch <- daemon.Gauge(descReachable, registered)
	ch <- daemon.Counter(descWhois, r.Whois, "answered")
	ch <- daemon.Counter(descWhois, r.WhoisLimited, "limited")
	if r := c.n.NAT(); r != nil {
		ch <- daemon.Gauge(descNAT, 1, r.Mapping.String())
	}
	if p := c.n.pub; p != nil {
		ok, failed := p.Stats()
		ch <- daemon.Counter(descPublished, ok, "ok")
		ch <- daemon.Counter(descPublished, failed, "failed")
	}
	if c.n.exit == nil {
		return
	}
	e := c.n.exit.Stats()
	ch <- daemon.Gauge(descSessions, float64(e.Sessions))
	ch <- daemon.Counter(descSessEvents, e.Opened, "opened")
	ch <- daemon.Counter(descSessEvents, e.Reattached, "reattached")
	ch <- daemon.Counter(descSessEvents, e.Expired, "expired")
	ch <- daemon.Counter(descExitPkts, e.ToInternet, "out")
	ch <- daemon.Counter(descExitPkts, e.FromInternet, "in")
	for reason, v := range map[string]uint64{
		"policy": e.DropPolicy, "no_session": e.DropNoSession, "malformed": e.DropMalformed,
		"protocol": e.DropProtocol, "ipv6": e.DropIPv6, "no_circuit": e.DropNoCircuit,
		"foreign_source":      e.DropForeignSource,
		"unknown_destination": e.DropUnknownDest, "tun": e.DropTUN,
	} {
		ch <- daemon.Counter(descExitDrops, v, reason)
	}
	for reason, v := range e.DeniedBy {
		ch <- daemon.Counter(descDenied, v, reason.String())
	}
	if c.n.dns != nil {
		d := c.n.dns.Stats()
		for result, v := range map[string]uint64{
			"answered": d.Answered, "local": d.Local, "refused": d.Refused, "servfail": d.ServFail,
			"malformed": d.Malformed, "too_big": d.TooBig, "busy": d.Busy, "tcp": d.TCP,
		} {
			ch <- daemon.Counter(descDNS, v, result)
		}
	}
}
