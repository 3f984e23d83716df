package relay

import (
	"cmp"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
)

// The relay's memory in queued cells is bounded as Tor's MaxMemInQueues bounds it. Every cell queued
// on a link holds one pooled buffer (pool.Size bytes) until it is sent or dropped; the relay counts
// them, refuses a cell that would take it past Config.MaxQueueMemory, and then, as Tor's out-of-memory
// handler does, destroys the circuits whose oldest queued cell has waited longest until the queues
// are down to three quarters of the bound. Those are the circuits whose next hop does not take their
// cells — what an adversary who wants the relay to hold memory builds — while a busy circuit whose
// cells move keeps young cells and is spared.

// lowWater is the share of MaxQueueMemory a reclaim brings the queues down to.
const lowWater = 0.75

// enqueueOne queues b (a pooled buffer) for c on l, within the relay's memory bound.
func (r *Relay) enqueueOne(l Link, c *circuit, b []byte) {
	if r.queued.Add(1) > r.maxQueued {
		r.queued.Add(-1)
		pool.Put(b)
		r.stats.memoryFull.Add(1)
		select {
		case r.reclaimNow <- struct{}{}:
		default:
		}
		return
	}
	if !r.neighbour(l).sched.Enqueue(c.seq, b) { // a refused b comes back through r.release
		r.stats.queueFull.Add(1)
	}
}

// reclaimer destroys circuits when the queues reach the memory bound (see above).
func (r *Relay) reclaimer() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.reclaimNow:
			r.reclaim()
		}
	}
}

// backlog is what one circuit has queued at this relay, over all its links.
type backlog struct {
	seq    uint64
	cells  int
	waited time.Duration // by its oldest queued cell
}

// reclaim destroys the circuits whose oldest queued cells have waited longest until the cells queued
// at the relay are down to lowWater of the bound, and returns how many it destroyed.
func (r *Relay) reclaim() int {
	excess := r.queued.Load() - int64(lowWater*float64(r.maxQueued))
	if excess <= 0 {
		return 0
	}
	r.mu.Lock()
	links := make([]*neighbour, 0, len(r.links))
	for _, n := range r.links {
		links = append(links, n)
	}
	r.mu.Unlock()
	byCircuit := map[uint64]*backlog{}
	for _, n := range links {
		n.sched.Backlog(func(seq uint64, cells int, waited time.Duration) {
			b := byCircuit[seq]
			if b == nil {
				b = &backlog{seq: seq}
				byCircuit[seq] = b
			}
			b.cells += cells
			b.waited = max(b.waited, waited)
		})
	}
	all := make([]*backlog, 0, len(byCircuit))
	for _, b := range byCircuit {
		all = append(all, b)
	}
	slices.SortFunc(all, func(a, b *backlog) int { return cmp.Compare(b.waited, a.waited) })
	victims := map[uint64]bool{}
	for _, b := range all {
		if excess <= 0 {
			break
		}
		victims[b.seq] = true
		excess -= int64(b.cells)
	}
	killed := 0
	r.tab.each(func(c *circuit) {
		if victims[c.seq] && !c.dead.Load() {
			r.destroy(c, cell.ReasonResource, nil)
			killed++
		}
	})
	r.stats.memoryKilled.Add(uint64(killed))
	if killed > 0 {
		r.cfg.Logger.Warn("queued cells reached the relay's memory bound: destroyed the circuits whose cells waited longest",
			zap.Int("circuits", killed), zap.Int64("limit_bytes", r.cfg.MaxQueueMemory))
	}
	return killed
}
