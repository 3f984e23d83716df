package dht

import "sync/atomic"

// Stats is a snapshot of a node's counters (since New) and sizes (now).
type Stats struct {
	// Datagrams read and written, and those dropped before the library as malformed or hostile.
	PacketsIn, PacketsOut, Dropped uint64
	// QueriesIn counts queries received, of every kind; GetsIn, PutsIn and AnnouncesIn count the
	// BEP 44 get and put queries received and the announce_peer queries accepted (valid token).
	QueriesIn, GetsIn, PutsIn, AnnouncesIn uint64
	// QueriesOut counts queries sent, of every kind.
	QueriesOut uint64
	// FindNodesOut counts the find_node queries of lookups, GetsOut the BEP 44 get queries sent;
	// PutsOut and AnnouncesOut count the puts and announce_peer queries that other nodes accepted.
	FindNodesOut, GetsOut, PutsOut, AnnouncesOut uint64
	// Introduced counts querying nodes we pinged so that the library would hand them out.
	Introduced uint64
	// PeersStored and ItemsStored count what others stored with us.
	PeersStored, ItemsStored int
	// Nodes and GoodNodes count the routing table; good nodes have answered in the last 15 minutes.
	Nodes, GoodNodes int
}

// counters are the node's own event counts.
type counters struct {
	queriesIn, getsIn, putsIn, announcesIn       atomic.Uint64
	findNodesOut, getsOut, putsOut, announcesOut atomic.Uint64
	introduced                                   atomic.Uint64
}

func (c *counters) countQuery(q string) {
	c.queriesIn.Add(1)
	switch q {
	case "get":
		c.getsIn.Add(1)
	case "put":
		c.putsIn.Add(1)
	}
}

// Stats returns the node's counters and sizes.
func (n *Node) Stats() Stats {
	ss := n.srv.Stats()
	return Stats{
		PacketsIn:    n.conn.packetsIn.Load(),
		PacketsOut:   n.conn.packetsOut.Load(),
		Dropped:      n.conn.dropped.Load(),
		QueriesIn:    n.stats.queriesIn.Load(),
		GetsIn:       n.stats.getsIn.Load(),
		PutsIn:       n.stats.putsIn.Load(),
		AnnouncesIn:  n.stats.announcesIn.Load(),
		QueriesOut:   uint64(ss.OutboundQueriesAttempted),
		FindNodesOut: n.stats.findNodesOut.Load(),
		GetsOut:      n.stats.getsOut.Load(),
		PutsOut:      n.stats.putsOut.Load(),
		AnnouncesOut: n.stats.announcesOut.Load(),
		Introduced:   n.stats.introduced.Load(),
		PeersStored:  n.peers.Len(),
		ItemsStored:  n.items.Len(),
		Nodes:        ss.Nodes,
		GoodNodes:    ss.GoodNodes,
	}
}
