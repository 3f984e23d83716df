package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/dht/v2/traversal"
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
	ws, err := n.lookup(ctx, ih, n.getPeersQuery(ih, nil))
	if err != nil {
		return fmt.Errorf("dht announce %v: %w", ih, err)
	}
	announced, errs := toAll(ws, func(w writer) error {
		return n.srv.Query(ctx, w.addr, "announce_peer", dht.QueryInput{MsgArgs: krpc.MsgArgs{
			InfoHash:    krpc.ID(ih),
			Port:        &port,
			ImpliedPort: port == 0,
			Token:       w.token,
		}}).ToError()
	})
	n.stats.announcesOut.Add(uint64(announced))
	if announced == 0 {
		return fmt.Errorf("dht announce %v: no node accepted it (%d nearest asked): %w", ih, len(ws), errors.Join(errs...))
	}
	return nil
}

// FindPeers returns the peers announced under ih, as the nodes nearest it (and this node) know them.
// It finds none without error if none are announced.
func (n *Node) FindPeers(ctx context.Context, ih Infohash) ([]netip.AddrPort, error) {
	ctx, done, err := n.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	found := newPeerSet()
	found.add(n.peers.GetPeers(peer_store.InfoHash(ih)))
	if _, err := n.lookup(ctx, ih, n.getPeersQuery(ih, found)); err != nil {
		return nil, fmt.Errorf("dht find peers %v: %w", ih, err)
	}
	return found.list(), nil
}

// getPeersQuery asks one node for the peers under ih, adding those it names to found if not nil.
func (n *Node) getPeersQuery(ih Infohash, found *peerSet) func(context.Context, krpc.NodeAddr) traversal.QueryResult {
	return func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
		res := n.srv.GetPeers(ctx, dht.NewAddr(addr.UDP()), int160.FromByteArray(ih), false, dht.QueryRateLimiting{})
		if found != nil && res.Reply.R != nil {
			found.add(res.Reply.R.Values)
		}
		return res.TraversalQueryResult(addr)
	}
}

// peerSet collects distinct peer addresses from concurrent answers, up to maxFoundPeers.
type peerSet struct {
	mu    sync.Mutex
	addrs map[netip.AddrPort]struct{}
}

func newPeerSet() *peerSet { return &peerSet{addrs: make(map[netip.AddrPort]struct{})} }

func (s *peerSet) add(nas []krpc.NodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, na := range nas {
		if len(s.addrs) == maxFoundPeers {
			return
		}
		if ap, ok := peerAddr(na); ok {
			s.addrs[ap] = struct{}{}
		}
	}
}

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
