package sched

import (
	"errors"
	"fmt"
)

// Defaults for the zero fields of Config.
const (
	// DefaultQueueCells is WireGuard's per-peer queue depth. A shallower queue (128 was measured)
	// drops cells of a single TCP flow whenever the drain goroutine is off the CPU for a millisecond
	// on a busy host, and TCP reads each drop as congestion. Rings grow to it only when busy.
	DefaultQueueCells  = 1024
	DefaultQuantum     = 1500
	DefaultMaxCircuits = 65536
)

// Config describes one link's output scheduler. Zero numeric fields take the defaults.
type Config struct {
	// Send writes one cell to the link. It is called from the scheduler's single drain goroutine
	// only, without the scheduler's lock held, so it may block on a slow link; while it does, cells
	// queue up to the bounds below and then drop. An error is counted (Stats.SendErrors) and the
	// cell is released all the same: the link owner sees the error itself and decides whether to
	// tear the link down.
	Send func(circuit uint64, b []byte) error
	// SendBatch, if set, is used instead of Send: it writes several cells (of any circuits) at once, in
	// order, and returns how many it wrote. Links batch their system calls this way.
	SendBatch func(bufs [][]byte) (int, error)

	// Release, if set, takes back a buffer once the scheduler is done with it: after Send, or when
	// the cell is dropped, forgotten or discarded by Close. It may be called from any goroutine
	// that calls into the scheduler and from the drain goroutine, concurrently.
	Release func(b []byte)

	// QueueCells bounds each circuit's queue. A bound per circuit, rather than per link, is what
	// keeps one busy circuit from filling the link's buffer and delaying everybody else.
	QueueCells int

	// Quantum is the deficit round robin quantum in bytes: the credit a circuit earns per turn.
	// Around one cell or one MTU keeps turns short, so a backlogged circuit delays the others by
	// about one quantum per round.
	Quantum int

	// MaxCircuits bounds the circuits the scheduler keeps a queue for, and so its memory:
	// MaxCircuits × QueueCells buffers at most. A new circuit takes the queue of the circuit
	// that has been idle longest; when every queue holds cells, its cells are dropped.
	MaxCircuits int
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.Send == nil && c.SendBatch == nil {
		errs = append(errs, errors.New("Send and SendBatch are both nil"))
	}
	if c.QueueCells < 0 {
		errs = append(errs, fmt.Errorf("QueueCells is %d, want > 0 (or 0 for %d)", c.QueueCells, DefaultQueueCells))
	}
	if c.Quantum < 0 {
		errs = append(errs, fmt.Errorf("Quantum is %d, want > 0 (or 0 for %d)", c.Quantum, DefaultQuantum))
	}
	if c.MaxCircuits < 0 {
		errs = append(errs, fmt.Errorf("MaxCircuits is %d, want > 0 (or 0 for %d)", c.MaxCircuits, DefaultMaxCircuits))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Release == nil {
		c.Release = func([]byte) {}
	}
	if c.QueueCells == 0 {
		c.QueueCells = DefaultQueueCells
	}
	if c.Quantum == 0 {
		c.Quantum = DefaultQuantum
	}
	if c.MaxCircuits == 0 {
		c.MaxCircuits = DefaultMaxCircuits
	}
	return c
}
