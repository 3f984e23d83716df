package dht

import (
	"net"
	"slices"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"go.uber.org/zap"
)

// The library answers find_node with the nodes nearest the query's info_hash, which find_node does
// not carry, so it aims at the zero id; and it then scans only the buckets at or beyond that
// target's distance from us, never the nearer ones. A node running it hands out only the part of
// its table whose ids differ from its own in the leading bits where its own id has zeros: half its
// table at best, often nothing (a fresh bootstrap node then tells joiners about no one). So we
// answer find_node ourselves, with the good nodes nearest the real target; get_peers and get stay
// the library's (their answers carry write tokens only it can check), and our lookups walk with
// find_node instead (lookup.go).

const (
	// findNodeK is how many nodes a find_node answer carries (BEP 5's K).
	findNodeK = 8
	// maxAnswering bounds the find_node answers being prepared; beyond it the library answers.
	maxAnswering = 64
)

// answerFindNode takes over a find_node query, reporting whether it did. It runs on the library's
// read loop with the server's lock held, so the answer is prepared on a goroutine.
func (n *Node) answerFindNode(m *krpc.Msg, source net.Addr) bool {
	ua, ok := source.(*net.UDPAddr)
	if !ok || m.A == nil {
		return false
	}
	select {
	case n.answering <- struct{}{}:
	default:
		return false
	}
	t, target, wants := m.T, m.A.Target, slices.Clone(m.A.Want)
	if !n.goTracked(func() {
		defer func() { <-n.answering }()
		<-n.started
		n.sendFindNodeAnswer(ua, t, target, wants)
	}) {
		<-n.answering
		return false
	}
	return true
}

func (n *Node) sendFindNodeAnswer(to *net.UDPAddr, t string, target krpc.ID, wants []krpc.Want) {
	from, _ := udpAddrPort(to)
	good := func(ni krpc.NodeInfo) bool {
		ap, ok := nodeInfoAddr(ni)
		return ok && ap != from && n.responders.good(ap)
	}
	nodes := n.srv.Nodes()
	r := krpc.Return{ID: n.srv.ID()}
	if wantsFamily(wants, krpc.WantNodes, from.Addr().Is4()) {
		r.Nodes = closestNodes(nodes, target, findNodeK, func(ni krpc.NodeInfo) bool {
			ap, _ := nodeInfoAddr(ni)
			return ap.Addr().Is4() && good(ni)
		})
	}
	if wantsFamily(wants, krpc.WantNodes6, !from.Addr().Is4()) {
		r.Nodes6 = closestNodes(nodes, target, findNodeK, func(ni krpc.NodeInfo) bool {
			ap, _ := nodeInfoAddr(ni)
			return ap.Addr().Is6() && good(ni)
		})
	}
	b, err := bencode.Marshal(krpc.Msg{T: t, Y: krpc.YResponse, R: &r, IP: krpc.NodeAddr{IP: to.IP, Port: to.Port}})
	if err != nil {
		n.log.Warn("dht: encode find_node answer", zap.Error(err))
		return
	}
	// Like the library's own answers: under a flood, answers are dropped rather than queued.
	if !n.limiter.Allow() {
		return
	}
	if _, err := n.conn.WriteTo(b, to); err != nil {
		n.log.Debug("dht: send find_node answer", zap.Error(err))
	}
}

// wantsFamily applies BEP 32: the want list if there is one, else the querier's own family.
func wantsFamily(wants []krpc.Want, w krpc.Want, sameFamily bool) bool {
	if len(wants) == 0 {
		return sameFamily
	}
	return slices.Contains(wants, w)
}

// closestNodes returns up to k of nodes that keep accepts, nearest target by XOR distance.
func closestNodes(nodes []krpc.NodeInfo, target krpc.ID, k int, keep func(krpc.NodeInfo) bool) []krpc.NodeInfo {
	var out []krpc.NodeInfo
	for _, ni := range nodes {
		if keep(ni) {
			out = append(out, ni)
		}
	}
	t := target.Int160()
	slices.SortFunc(out, func(a, b krpc.NodeInfo) int {
		return a.ID.Int160().Distance(t).Cmp(b.ID.Int160().Distance(t))
	})
	return out[:min(k, len(out))]
}
