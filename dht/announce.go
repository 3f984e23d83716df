package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"go.uber.org/zap"
)

// maxFoundPeers bounds what one FindPeers collects, whatever the nodes it asks send back.
const maxFoundPeers = 4096

// Announce tells the nodes nearest ih that we are a peer under it, reachable at port on the address
// they see us at. Port 0 announces the port our DHT packets come from (BEP 5's implied_port), which
// is the one a NAT maps when the DHT shares the data-plane socket.
func (n *Node) Announce(ctx context.Context, ih Infohash, port int) error {
	if port < 0 || port > 0xffff {
		return fmt.Errorf("dht announce: port %d out of range", port)
	}
	ctx, done, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	nodes, err := n.nearest(ctx, ih)
	if err != nil {
		return fmt.Errorf("dht announce %v: %w", ih, err)
	}
	tokens := make([]string, len(nodes))
	askEach(nodes, func(i int, addr dht.Addr) {
		tokens[i], _ = tokenOf(n.getPeers(ctx, addr, ih))
	})
	var ws []writer
	for i, t := range tokens {
		if t != "" {
			ws = append(ws, writer{addr: dht.NewAddr(nodes[i].Addr.UDP()), token: t})
		}
	}
	announced, errs := toAll(ws, func(w writer) error {
		return n.query(ctx, w.addr, "announce_peer", krpc.MsgArgs{
			InfoHash:    krpc.ID(ih),
			Port:        &port,
			ImpliedPort: port == 0,
			Token:       w.token,
		}).ToError()
	})
	n.stats.announcesOut.Add(uint64(announced))
	if announced == 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dht announce %v: %w", ih, err)
		}
		if len(ws) == 0 {
			return fmt.Errorf("dht announce %v: %w: none of the %d nearest nodes answered get_peers with a token", ih, ErrNoNodes, len(nodes))
		}
		return fmt.Errorf("dht announce %v: no node accepted it (%d nearest asked, %d gave a token): %w", ih, len(nodes), len(ws), errors.Join(errs...))
	}
	return nil
}

// Peer sampling. A node holding more peers under an infohash than one answer carries (our peer
// store sends at most Peers.MaxReply, 50 by default, chosen at random) answers each get_peers with
// another sample, so FindPeers asks the nearest nodes again, round after round, until the answers
// stop bringing peers we do not know. A node whose answer holds everything it ever told us, twice,
// is not sampling and is not asked again.
const (
	// peerSampleFactor: FindPeers stops once the peers sampled since the last new one number
	// peerSampleFactor times the peers found. A peer that every nearest node holds then stays
	// unseen with a probability near e^-peerSampleFactor (under 1%).
	peerSampleFactor = 5
	// maxPeerRounds bounds the rounds of get_peers queries to the nearest nodes: enough to see
	// every one of 1000 peers (Peers.MaxPerInfohash) in answers of 50 from 8 nodes.
	maxPeerRounds = 48
	// findPeersTries is how many rounds a nearest node may go unanswered (each query sent
	// queryTries times) before FindPeers stops asking it.
	findPeersTries = 2
)

// FindPeers returns the peers announced under ih, as the nodes nearest it (and this node) know them.
// It finds none without error if none are announced.
func (n *Node) FindPeers(ctx context.Context, ih Infohash) ([]netip.AddrPort, error) {
	ctx, done, err := n.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	found := newPeerSet()
	found.add(n.peers.all(ih))
	nodes, err := n.nearest(ctx, ih)
	if err != nil {
		return nil, fmt.Errorf("dht find peers %v: %w", ih, err)
	}
	// What each of the nearest nodes has told us, and whether it is still worth asking.
	type source struct {
		told     map[netip.AddrPort]struct{}
		answers  int
		failures int
		done     bool
	}
	sources := make([]source, len(nodes))
	for i := range sources {
		sources[i].told = make(map[netip.AddrPort]struct{})
	}
	sinceNew, rounds, answered := 0, 0, 0
	for ; rounds < maxPeerRounds; rounds++ {
		var asking []krpc.NodeInfo
		var which []int
		for i := range sources {
			if !sources[i].done {
				asking = append(asking, nodes[i])
				which = append(which, i)
			}
		}
		if len(asking) == 0 {
			break
		}
		replies := make([][]krpc.NodeAddr, len(asking))
		oks := make([]bool, len(asking))
		askEach(asking, func(i int, addr dht.Addr) {
			res := n.getPeers(ctx, addr, ih)
			if res.Err == nil && res.Reply.R != nil {
				replies[i], oks[i] = res.Reply.R.Values, true
			}
		})
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dht find peers %v: %w", ih, err)
		}
		added, sampled := 0, 0
		for j, i := range which {
			s := &sources[i]
			if !oks[j] {
				// No answer, even to a resend: ask once more in the next round (a node holding
				// the only copies of some announces may have been busy), then give up on it.
				s.failures++
				s.done = s.failures >= findPeersTries
				continue
			}
			if len(replies[j]) == 0 {
				// No peers: nothing more to learn from it.
				s.done = true
				continue
			}
			answered++
			s.answers++
			distinct := make(map[netip.AddrPort]struct{}, len(replies[j]))
			for _, na := range replies[j] {
				if ap, ok := peerAddr(na); ok {
					distinct[ap] = struct{}{}
					s.told[ap] = struct{}{}
				}
			}
			if s.answers >= 2 && len(distinct) == len(s.told) {
				s.done = true // it sends all it has
			}
			added += found.add(replies[j])
			sampled += len(replies[j])
		}
		if added > 0 {
			sinceNew = 0
		} else {
			sinceNew += sampled
		}
		if found.full() || sinceNew >= peerSampleFactor*max(found.len(), 1) {
			rounds++
			break
		}
	}
	if ce := n.log.Check(zap.DebugLevel, "dht find peers"); ce != nil {
		ce.Write(zap.Stringer("infohash", ih), zap.Int("nearest", len(nodes)), zap.Int("rounds", rounds), zap.Int("answers", answered), zap.Int("peers", found.len()))
	}
	return found.list(), nil
}

// getPeers asks one node for the peers under ih (and a write token).
func (n *Node) getPeers(ctx context.Context, addr dht.Addr, ih Infohash) dht.QueryResult {
	return n.query(ctx, addr, "get_peers", krpc.MsgArgs{InfoHash: krpc.ID(ih)})
}

// peerSet collects distinct peer addresses from concurrent answers, up to maxFoundPeers.
type peerSet struct {
	mu    sync.Mutex
	addrs map[netip.AddrPort]struct{}
}

func newPeerSet() *peerSet { return &peerSet{addrs: make(map[netip.AddrPort]struct{})} }

// add adds the usable addresses of nas and returns how many were new.
func (s *peerSet) add(nas []krpc.NodeAddr) (added int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, na := range nas {
		if len(s.addrs) == maxFoundPeers {
			return added
		}
		if ap, ok := peerAddr(na); ok {
			if _, ok := s.addrs[ap]; !ok {
				s.addrs[ap] = struct{}{}
				added++
			}
		}
	}
	return added
}

func (s *peerSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.addrs)
}

func (s *peerSet) full() bool { return s.len() >= maxFoundPeers }

// list returns the addresses in a stable order.
func (s *peerSet) list() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(s.addrs))
	for ap := range s.addrs {
		out = append(out, ap)
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}
