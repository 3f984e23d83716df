package dht

import (
	"context"
	"fmt"

	"github.com/anacrolix/dht/v2"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
)

// A lookupQuery asks one node during a lookup and returns what the traversal needs from its answer.
type lookupQuery func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult

// writer is one of the nodes nearest a lookup's target, with the write token it gave us (for a put or
// an announce_peer).
type writer struct {
	addr  dht.Addr
	token string
}

// lookup walks the DHT towards target with the library's traversal, asking each node with query,
// and returns the nearest nodes that gave a write token. It returns once the traversal has no one
// left to ask, or ctx ends; either way no query of it is still running.
func (n *Node) lookup(ctx context.Context, target [20]byte, query lookupQuery) ([]writer, error) {
	start, err := n.srv.TraversalStartingNodes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNodes, err)
	}
	op := traversal.Start(traversal.OperationInput{
		Target:     target,
		DoQuery:    query,
		NodeFilter: n.srv.TraversalNodeFilter,
		DataFilter: func(data any) bool {
			token, ok := data.(string)
			return ok && token != ""
		},
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
	if op.Stats().NumResponses == 0 {
		return nil, fmt.Errorf("%w: none of %d nodes asked answered", ErrNoNodes, op.Stats().NumAddrsTried)
	}
	var ws []writer
	op.Closest().Range(func(e k_nearest_nodes.Elem) {
		ws = append(ws, writer{addr: dht.NewAddr(e.Addr.UDP()), token: e.Data.(string)})
	})
	return ws, nil
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
