// Package sched is a relay's output scheduler for one link: it shares the link fairly among the
// circuits that have cells for it and drops, rather than buffers, what the link cannot take.
//
// Every queue is bounded, so a slow link costs dropped cells instead of memory and delay; the
// tunnelled TCP sees the drops and backs off, which is the congestion control the overlay relies
// on. Circuits are served by deficit round robin over bytes, so a circuit of small cells gets the
// same bandwidth as one of full cells and a busy circuit cannot starve a quiet one.
//
// A cell is a buffer the scheduler owns from Enqueue until it hands it to Config.Release: after
// Send, or when the cell is dropped, forgotten or discarded by Close. Every buffer passed to
// Enqueue is released exactly once, so callers can pool them.
package sched

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a scheduler's counters. Every cell accepted by Enqueue ends up counted
// in exactly one of Sent, SendErrors, Forgotten and DroppedClosed, or is still Queued or in the
// drain goroutine's hands.
type Stats struct {
	Enqueued      uint64 // cells accepted by Enqueue
	Sent          uint64 // cells Send took without error
	DroppedFull   uint64 // cells refused because their circuit's queue, or the circuit table, was full
	DroppedClosed uint64 // cells refused after Close, or still queued when Close discarded them
	SendErrors    uint64 // cells Send returned an error for
	Forgotten     uint64 // queued cells discarded by Forget

	Queued         int // cells waiting now
	ActiveCircuits int // circuits with cells waiting now
}

// Scheduler queues cells per circuit and sends them on one link from a single drain goroutine.
// Its methods are safe for concurrent use.
type Scheduler struct {
	cfg Config

	mu     sync.Mutex
	wake   sync.Cond // signalled when the active list stops being empty, and on Close
	queues map[uint64]*circuitQueue
	active queueList // circuits with cells, in round robin order
	idle   queueList // circuits without cells, longest idle first: the next to give up its queue
	spare  queueList // queues of forgotten circuits, kept for reuse
	queued int
	stats  Stats

	closed    atomic.Bool // written under mu; read without it by the drain goroutine mid-batch
	closeOnce sync.Once
	done      chan struct{}
}

// New returns a scheduler for cfg and starts its drain goroutine, which runs until Close.
// It panics if cfg is invalid (see Config.Validate), since that is a programming error.
func New(cfg Config) *Scheduler {
	if err := cfg.Validate(); err != nil {
		panic("sched: invalid config: " + err.Error())
	}
	s := &Scheduler{
		cfg:    cfg.withDefaults(),
		queues: make(map[uint64]*circuitQueue),
		done:   make(chan struct{}),
	}
	s.wake.L = &s.mu
	go s.drain()
	return s
}

// Enqueue queues b to be sent on circuit. It never blocks: if the circuit's queue is full, or every
// queue the scheduler may keep is busy, or the scheduler is closed, b is released, counted as
// dropped, and Enqueue returns false. Dropping is the point: a link that cannot keep up must shed
// cells so the end-to-end TCP inside the circuit slows down, instead of queueing without bound.
func (s *Scheduler) Enqueue(circuit uint64, b []byte) bool {
	now := nanotime()
	s.mu.Lock()
	if s.closed.Load() {
		s.stats.DroppedClosed++
		s.mu.Unlock()
		s.cfg.Release(b)
		return false
	}
	q := s.queues[circuit]
	if q == nil {
		q = s.admit(circuit)
	}
	if q == nil || q.full() {
		s.stats.DroppedFull++
		s.mu.Unlock()
		s.cfg.Release(b)
		return false
	}
	q.push(b, now)
	s.queued++
	s.stats.Enqueued++
	wake := false
	if q.n == 1 {
		s.idle.remove(q)
		q.deficit = s.cfg.Quantum
		s.active.pushBack(q)
		wake = s.active.len == 1
	}
	s.mu.Unlock()
	if wake {
		s.wake.Signal()
	}
	return true
}

// admit gives circuit a queue, placed on the idle list, or returns nil if every queue the
// scheduler may keep holds cells. s.mu must be held.
func (s *Scheduler) admit(circuit uint64) *circuitQueue {
	var q *circuitQueue
	switch {
	case s.spare.len > 0:
		q = s.spare.popFront()
	case len(s.queues) < s.cfg.MaxCircuits:
		q = newCircuitQueue(s.cfg.QueueCells)
	case s.idle.len > 0:
		// Taking the longest idle circuit's queue bounds memory even if the caller never calls
		// Forget; should that circuit send again it simply gets a queue anew.
		q = s.idle.popFront()
		delete(s.queues, q.id)
	default:
		return nil
	}
	q.id = circuit
	s.queues[circuit] = q
	s.idle.pushBack(q)
	return q
}

// Forget drops and releases everything queued for circuit, and frees its queue; call it when the
// circuit is destroyed so its cells stop taking the link's bandwidth. A cell the drain goroutine
// has already taken may still be sent.
func (s *Scheduler) Forget(circuit uint64) {
	s.mu.Lock()
	q := s.queues[circuit]
	if q == nil {
		s.mu.Unlock()
		return
	}
	delete(s.queues, circuit)
	if q.n == 0 {
		s.idle.remove(q)
		s.spare.pushBack(q)
		s.mu.Unlock()
		return
	}
	s.active.remove(q)
	s.queued -= q.n
	s.stats.Forgotten += uint64(q.n)
	s.mu.Unlock()

	// q is out of every list and the map, so it is ours alone: release outside the lock, where a
	// slow Release delays nobody else's Enqueue.
	for q.n > 0 {
		s.cfg.Release(q.pop())
	}

	s.mu.Lock()
	// Queues allocated while q was detached may have reached the bound; then q goes to the GC.
	if !s.closed.Load() && len(s.queues)+s.spare.len < s.cfg.MaxCircuits {
		s.spare.pushBack(q)
	}
	s.mu.Unlock()
}

// Backlog calls f for every circuit with cells waiting: how many, and how long the oldest of them has
// waited. A relay's memory bound reads it to find the circuits whose cells wait longest (those whose
// next hop does not take them), which are the ones to destroy. f is called with the scheduler's lock
// held: it must be quick and must not call into the scheduler.
func (s *Scheduler) Backlog(f func(circuit uint64, cells int, waited time.Duration)) {
	now := nanotime()
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := s.active.head; q != nil; q = q.next {
		f(q.id, q.n, time.Duration(now-q.oldest()))
	}
}

// epoch is the origin of nanotime.
var epoch = time.Now()

// nanotime reads the monotonic clock, in nanoseconds since epoch.
func nanotime() int64 { return int64(time.Since(epoch)) }

// Stats returns a consistent snapshot of the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = s.queued
	st.ActiveCircuits = s.active.len
	return st
}

// Close stops the drain goroutine and releases every queued buffer; later Enqueues drop their
// cells. A Send in progress is not interrupted: Close waits for it, so the link owner should
// unblock Send (by closing the link) if it may hang. The rest of the drain goroutine's current
// batch is released unsent. Close is idempotent.
func (s *Scheduler) Close() {
	s.closeOnce.Do(s.close)
}

func (s *Scheduler) close() {
	s.mu.Lock()
	s.closed.Store(true)
	pending := s.active.head
	s.stats.DroppedClosed += uint64(s.queued)
	s.queued = 0
	s.queues = nil
	s.active, s.idle, s.spare = queueList{}, queueList{}, queueList{}
	s.mu.Unlock()
	s.wake.Broadcast()

	// The detached queues are reachable from nowhere else now, so no lock is needed; releasing
	// before waiting for the drain goroutine returns buffers even while a Send is stuck.
	for q := pending; q != nil; q = q.next {
		for q.n > 0 {
			s.cfg.Release(q.pop())
		}
	}
	<-s.done
}
