package relay

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// circuit is one circuit through this relay.
type circuit struct {
	seq   uint64 // the circuit's key in the output schedulers
	prev  end    // towards the client
	depth int
	hop   *onion.Hop
	// binding is the handshake's binding secret (onion.HopKeys.Binding): an exit session credential
	// proves knowledge of it when this relay is the circuit's last hop.
	binding [32]byte

	fwdMu sync.Mutex // serializes Peel (forward state of hop)
	gaps  onion.Gaps // hop's forward gaps counted so far, while the circuit ends here (gaps.go)
	bwdMu sync.Mutex // serializes Wrap and Originate (backward state of hop)

	next atomic.Pointer[end] // towards the exit, once the extension is confirmed

	mu        sync.Mutex
	extending bool
	pending   *end        // CREATE sent, CREATED awaited
	timer     *time.Timer // ends a pending extension

	from       *neighbour // the link the circuit was opened on (nil in benchmarks that build circuits by hand)
	exit       ExitCircuit
	lastActive atomic.Int64
	dead       atomic.Bool
	done       chan struct{}
}

func (c *circuit) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// uses reports whether link l carries this circuit.
func (c *circuit) uses(l Link) bool {
	if c.prev.link == l {
		return true
	}
	if n := c.next.Load(); n != nil && n.link == l {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil && c.pending.link == l
}

// onCreate queues a CREATE for a handshake worker, or refuses it: when its link has all the circuits
// or has opened them as fast as one link may (Config.MaxCircuitsPerLink, CreateRate), or the queue is
// full.
func (r *Relay) onCreate(l Link, id cell.ID, body []byte) {
	if !id.ChosenBy(cell.IDBit(l.Peer(), r.linkID)) || r.tab.get(end{l, id}) != nil {
		r.stats.protocol.Add(1)
		return
	}
	job := createJob{l: l, id: id}
	if len(body) < cell.CreateLen {
		r.stats.malformed.Add(1)
		return
	}
	n := r.neighbour(l)
	switch {
	case n.circuits.Load() >= int64(r.cfg.MaxCircuitsPerLink):
		r.stats.linkCircuits.Add(1)
	case !n.takeCreate(r.now(), r.cfg.CreateRate, r.cfg.CreateBurst):
		r.stats.createRate.Add(1)
	default:
		copy(job.body[:], body)
		select {
		case r.creates <- job:
			return
		default:
			r.stats.rateLimited.Add(1)
		}
	}
	r.sendControl(l, id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonResource) })
}

func (r *Relay) createWorker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case job := <-r.creates:
			r.create(job)
		}
	}
}

// create answers one CREATE: the handshake, a new hop at the depth the sender named, CREATED.
func (r *Relay) create(job createJob) {
	body := make([]byte, r.cfg.Sizes[0])
	copy(body, job.body[:])
	cb, err := cell.DecodeCreate(body)
	if err != nil || int(cb.Depth) > onion.MaxHops {
		r.stats.malformed.Add(1)
		r.sendControl(job.l, job.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonProtocol) })
		return
	}
	if r.open.Load() >= int64(r.cfg.MaxCircuits) {
		r.sendControl(job.l, job.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonResource) })
		return
	}
	reply, keys, err := r.server.Load().Respond(r.cfg.Rand, cb.Handshake)
	if err != nil {
		r.stats.malformed.Add(1)
		reason := cell.ReasonHandshake
		if errors.Is(err, ntor.ErrMalformed) {
			reason = cell.ReasonProtocol
		}
		r.sendControl(job.l, job.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, reason) })
		return
	}
	hop, err := onion.NewHop(keys, int(cb.Depth))
	if err != nil {
		r.sendControl(job.l, job.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonInternal) })
		return
	}
	from := r.neighbour(job.l)
	if from.circuits.Add(1) > int64(r.cfg.MaxCircuitsPerLink) { // CREATEs queued before the bound was reached
		from.circuits.Add(-1)
		r.stats.linkCircuits.Add(1)
		r.sendControl(job.l, job.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonResource) })
		return
	}
	c := &circuit{seq: r.seq.Add(1), prev: end{job.l, job.id}, depth: int(cb.Depth), hop: hop, from: from, binding: keys.Binding, done: make(chan struct{})}
	clear(keys.Binding[:])
	c.exit = ExitCircuit{r: r, c: c}
	c.touch()
	if !r.tab.add(c.prev, c) {
		from.circuits.Add(-1)
		r.stats.protocol.Add(1)
		return
	}
	r.open.Add(1)
	r.stats.created.Add(1)
	r.sendControl(job.l, job.id, cell.Created, func(b []byte) { _ = cell.EncodeCreated(b, reply) })
}

// onDestroy tears down the circuit the DESTROY names, passing it on to the other side.
func (r *Relay) onDestroy(l Link, id cell.ID, body []byte) {
	c := r.tab.get(end{l, id})
	if c == nil {
		r.stats.unknown.Add(1)
		return
	}
	// The neighbour's reason is not passed on (see destroy); a reason byte that is none of the known
	// ones is counted, and the circuit goes all the same: its other end is gone.
	switch _, err := cell.DecodeDestroy(body); {
	case errors.Is(err, cell.ErrDestroyReason):
		r.stats.destroyReason.Add(1)
	case err != nil:
		r.stats.malformed.Add(1)
	}
	r.destroy(c, cell.ReasonDestroyed, l)
}

// destroy tears c down once: it leaves the table, its queued cells are dropped, and a DESTROY goes to
// every neighbour of the circuit except the link `from` that reported it. Only the DESTROY towards the
// client carries reason; every other one says ReasonDestroyed, and a teardown passed on from a
// neighbour (onDestroy) says ReasonDestroyed both ways. So no reason byte crosses an honest relay,
// and no hop beyond this one learns why it gave up (that a cell of the circuit failed authentication
// here, say).
func (r *Relay) destroy(c *circuit, reason cell.DestroyReason, from Link) {
	if !c.dead.CompareAndSwap(false, true) {
		return
	}
	close(c.done)
	r.stats.destroyed.Add(1)
	if c.from != nil {
		c.from.circuits.Add(-1)
		r.open.Add(-1)
	}
	r.tab.remove(c.prev, c)
	ends := []end{c.prev}
	if n := c.next.Load(); n != nil {
		r.tab.remove(*n, c)
		ends = append(ends, *n)
	}
	c.mu.Lock()
	if c.pending != nil {
		r.tab.remove(*c.pending, c)
		ends = append(ends, *c.pending)
		c.pending = nil
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	for _, e := range ends {
		if n := r.lookupNeighbour(e.link); n != nil {
			n.sched.Forget(c.seq)
		}
		if e.link != from {
			why := reason
			if e != c.prev {
				why = cell.ReasonDestroyed
			}
			r.sendControl(e.link, e.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, why) })
		}
	}
	r.cfg.Logger.Debug("circuit destroyed", zap.Stringer("reason", reason), zap.Int("depth", c.depth))
}

// newID picks an unused circuit id for a circuit this relay opens on l, never the id the circuit has on
// its other link (so that the two links' ids cannot be matched even by chance).
func (r *Relay) newID(l Link, avoid cell.ID) cell.ID {
	bit := cell.IDBit(r.linkID, l.Peer())
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		id := cell.ID(binary.BigEndian.Uint32(b[:]))&^(1<<31) | bit
		if id&^(1<<31) != 0 && id != avoid && r.tab.get(end{l, id}) == nil {
			return id
		}
	}
}
