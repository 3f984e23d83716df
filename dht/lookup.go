package dht

import (
	"context"
	"fmt"
	"sync"

	"github.com/anacrolix/dht/v2"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
)

// Every lookup (Publish, Fetch, Announce, FindPeers) has two steps. First a traversal with
// find_node queries finds the nodes nearest the target; then those nodes alone are asked with get
// or get_peers, for the item or the peers and a write token, and put or announce_peer go to them.
//
// Why not one traversal of get or get_peers queries, as BEP 5 and 44 have it: the node lists in the
// library's answers to those lead elsewhere. Its get answers aim at the query's info_hash, which
// get does not carry (the zero id), like its find_node answers; its get_peers answers carry no
// nodes at all once it holds peers, and otherwise scan only the buckets at or beyond the target's
// distance, in map order. Traversals then ended on nodes far from the target, a different set each
// time: in a DHT of 250 nodes, 1.3 to 1.8 of an item's 8 copies were on the 8 nodes nearest it,
// and a fresh node failed to fetch 16 to 26% of the items (TestPublishFetchAtScale). Walking with
// find_node, all 8 are, and it fetches every one. We cannot answer get and get_peers ourselves: the
// put and announce_peer that follow carry write tokens that only the library can check (its token
// server is unexported). find_node we do answer ourselves, with the nodes nearest the real target
// (findnode.go).

// lookupK is how many nodes a lookup ends with (BEP 5's K): items and announces are stored on them,
// and fetched and found from them.
const lookupK = 8

// queryTries is how many times a lookup's query is sent (find_node, get, put, get_peers,
// announce_peer) and a Bootstrap's ping: once more after QueryTimeout without an answer, and an
// answer to either send counts until QueryTimeout after the second. The library sends each query
// once and then forgets it, so one datagram lost, or an answer late on a busy host, cost the node
// for the whole operation: a Fetch whose gets to the holders went unanswered reported the item
// missing, and one whose walk started from a single node failed with ErrNoNodes
// (TestPublishFetchAtScale under load; TestLookupsSurviveLoss). The price: a node that never
// answers holds its place in a lookup for twice QueryTimeout.
const queryTries = 2

// query sends q to addr up to queryTries times (see queryTries) and returns the first answer.
// Resends wait for the send limiter like first sends: the library's default fails a query whose
// resend finds the limiter empty, without waiting for the first send's answer.
func (n *Node) query(ctx context.Context, addr dht.Addr, q string, args krpc.MsgArgs) dht.QueryResult {
	return n.srv.Query(ctx, addr, q, dht.QueryInput{
		MsgArgs:      args,
		NumTries:     queryTries,
		RateLimiting: dht.QueryRateLimiting{WaitOnRetries: true},
	})
}

// nearest walks the DHT towards target with find_node queries, and returns the nodes nearest target
// that answered (at most lookupK), nearest first. It returns once the traversal has no one left to
// ask, or ctx ends; either way no query of it is still running.
func (n *Node) nearest(ctx context.Context, target [20]byte) ([]krpc.NodeInfo, error) {
	start, err := n.srv.TraversalStartingNodes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNodes, err)
	}
	op := traversal.Start(traversal.OperationInput{
		Target: target,
		K:      lookupK,
		DoQuery: func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			n.stats.findNodesOut.Add(1)
			res := n.query(ctx, dht.NewAddr(addr.UDP()), "find_node", krpc.MsgArgs{Target: target})
			return res.TraversalQueryResult(addr)
		},
		NodeFilter: n.srv.TraversalNodeFilter,
	})
	op.AddNodes(start)
	select {
	case <-op.Stalled():
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Stopping cancels the queries in flight; Stopped waits for them.
	op.Stop()
	<-op.Stopped()
	if err != nil {
		return nil, err
	}
	var out []krpc.NodeInfo
	op.Closest().Range(func(e k_nearest_nodes.Elem) {
		out = append(out, krpc.NodeInfo{ID: e.ID, Addr: e.Addr.ToNodeAddr()})
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of %d nodes asked answered", ErrNoNodes, op.Stats().NumAddrsTried)
	}
	return out, nil
}

// askEach runs ask for every node concurrently and returns once all have returned.
func askEach(nodes []krpc.NodeInfo, ask func(i int, addr dht.Addr)) {
	var wg sync.WaitGroup
	for i, ni := range nodes {
		wg.Go(func() { ask(i, dht.NewAddr(ni.Addr.UDP())) })
	}
	wg.Wait()
}

// writer is one of the nodes nearest a lookup's target, with the write token it gave us (for a put or
// an announce_peer).
type writer struct {
	addr  dht.Addr
	token string
}

// toAll runs f for every writer concurrently and returns how many succeeded, and why the others
// failed.
func toAll(ws []writer, f func(writer) error) (ok int, errs []error) {
	errc := make(chan error, len(ws))
	for _, w := range ws {
		go func() {
			if err := f(w); err != nil {
				errc <- fmt.Errorf("%s: %w", w.addr, err)
				return
			}
			errc <- nil
		}()
	}
	for range ws {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		} else {
			ok++
		}
	}
	return ok, errs
}

// tokenOf returns the write token in an answer, if there is one.
func tokenOf(res dht.QueryResult) (string, bool) {
	if res.Err != nil || res.Reply.R == nil || res.Reply.R.Token == nil || *res.Reply.R.Token == "" {
		return "", false
	}
	return *res.Reply.R.Token, true
}
