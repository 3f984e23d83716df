package relay

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/core/sched"
)

// neighbour is what the relay keeps per link: the link's output scheduler and the bounds on what the
// peer at its other end may make the relay hold (circuits it opened, and the rate it opens them at).
type neighbour struct {
	sched    *sched.Scheduler
	circuits atomic.Int64 // circuits the peer opened with CREATE on this link that are still open

	createMu sync.Mutex
	tokens   float64   // CREATEs the peer may send now (a token bucket of Config.CreateBurst)
	refilled time.Time // when tokens was last brought up to date
}

// neighbour returns the state of link l, making it on first use.
func (r *Relay) neighbour(l Link) *neighbour {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.links[l]
	if n == nil {
		n = &neighbour{
			sched: sched.New(sched.Config{
				SendBatch: func(bufs [][]byte) (int, error) {
					n, err := l.SendBatch(bufs)
					r.stats.cellsOut.Add(uint64(n))
					return n, err
				},
				Release:    r.release,
				QueueCells: r.cfg.QueueCells,
			}),
			tokens:   float64(r.cfg.CreateBurst),
			refilled: r.now(),
		}
		r.links[l] = n
	}
	return n
}

// lookupNeighbour returns the state of link l, or nil if the relay keeps none.
func (r *Relay) lookupNeighbour(l Link) *neighbour {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.links[l]
}

// takeCreate reports whether the peer may open a circuit now, and takes one token if so.
func (n *neighbour) takeCreate(now time.Time, rate float64, burst int) bool {
	n.createMu.Lock()
	defer n.createMu.Unlock()
	if d := now.Sub(n.refilled); d > 0 {
		n.tokens = min(float64(burst), n.tokens+d.Seconds()*rate)
		n.refilled = now
	}
	if n.tokens < 1 {
		return false
	}
	n.tokens--
	return true
}

// release takes back a buffer the relay queued (see enqueueOne).
func (r *Relay) release(b []byte) {
	r.queued.Add(-1)
	pool.Put(b)
}
