package onion

import (
	"fmt"
	"time"
)

// The scheduled ratchet: besides its byte budget, a sending key that has sealed something moves to its
// next generation once it is a period old (design: keys replaced after 1 hour or 1 GB), and a receiver
// erases the generation before its current one a window after it moved on. Both are driven by the
// circuits' owner, which calls Ratchet (sending side) and Expire (receiving side) for every circuit at
// least every RatchetTick(period): no clock is read on the per-cell path.
//
// After a ratchet the sender sends one Nudge, a cell that carries nothing, under the new key. The
// receiver follows it to the new generation and erases the old one a window later, even if the circuit
// then stays idle; without it an idle receiver would keep the key of the last cells it opened for as
// long as the circuit lives. A nudge does not count as use of the key of the one who sends it, so an
// idle circuit is not nudged once a period; the relays that a backward nudge passes seal it as they
// seal data (they cannot tell), so each of them ratchets once more for each nudge from beyond it, and
// an idle circuit settles after a few periods.

// DefaultRatchetEvery is the scheduled ratchet's default period.
const DefaultRatchetEvery = time.Hour

// maxRatchetWindow bounds how long a receiver keeps a previous generation for cells delayed past a
// ratchet. Cells are reordered by queues, not held for long: a cell later than this is dropped (counted
// as a replay).
const maxRatchetWindow = 30 * time.Second

// RatchetWindow returns how long a receiver keeps the previous generation after a ratchet, for a
// ratchet period of every: half the period, at most 30 s.
func RatchetWindow(every time.Duration) time.Duration { return min(every/2, maxRatchetWindow) }

// RatchetTick returns how often the owner of circuits calls Ratchet and Expire for a ratchet period of
// every: half the window. A generation is aged from the first tick that sees it, so a key seals for at
// most a period and two ticks, and a previous generation is kept for a window and at most two ticks.
func RatchetTick(every time.Duration) time.Duration {
	return max(RatchetWindow(every)/2, time.Millisecond)
}

// due reports whether the scheduled ratchet replaces the sender's generation at now: it sealed
// something other than nudges and has been current for at least every. A generation is aged from the
// first call that sees it.
func (s *sealer) due(now time.Time, every time.Duration) bool {
	if s.born.IsZero() {
		s.born = now
		return false
	}
	return s.counter > s.nudges && now.Sub(s.born) >= every
}

// ratchet moves to the next generation if due, and reports whether it did.
func (s *sealer) ratchet(now time.Time, every time.Duration) (bool, error) {
	if !s.due(now, every) {
		return false, nil
	}
	if err := s.rotate(); err != nil {
		return false, err
	}
	s.born = now
	return true, nil
}

// expire erases the previous generation once it has been kept for window, and reports whether it did.
// The generation is aged from the first call that sees it.
func (o *opener) expire(now time.Time, window time.Duration) bool {
	if !o.hasPrev {
		return false
	}
	if o.prevSince.IsZero() {
		o.prevSince = now
		return false
	}
	if now.Sub(o.prevSince) < window {
		return false
	}
	o.prev.wipe()
	o.hasPrev, o.prevSince, o.erased = false, time.Time{}, true
	return true
}

// Ratchet replaces the backward key with its next generation if the scheduled ratchet is due at now
// (see the package's ratchet notes), and reports whether it did; if so the caller sends a Nudge next,
// under the same serialization. It takes the backward direction's serialization, as Wrap does.
func (h *Hop) Ratchet(now time.Time, every time.Duration) (bool, error) {
	return h.bwd.ratchet(now, every)
}

// Nudge seals a backward cell that starts at this hop, as Originate does, but does not count it as use
// of the key: it tells the client to follow a Ratchet, and carries nothing worth a ratchet of its own.
func (h *Hop) Nudge(cell []byte) error {
	if err := h.Originate(cell); err != nil {
		return err
	}
	h.bwd.nudges++
	return nil
}

// Expire erases the forward generation kept for cells delayed past the client's last ratchet once it
// has been kept for window, and reports whether it did. It takes the forward direction's
// serialization, as Peel does.
func (h *Hop) Expire(now time.Time, window time.Duration) bool { return h.fwd.expire(now, window) }

// Epochs returns the generations of the hop's keys: the forward key's as this hop last followed it, the
// backward key's as this hop seals with it. It reads both directions' state: call it only with both
// serialized.
func (h *Hop) Epochs() (forward, backward uint64) { return h.fwd.cur.epoch, h.bwd.gen.epoch }

// Ratchet replaces every forward key for which the scheduled ratchet is due at now (see the package's
// ratchet notes), and reports whether it replaced any; if so the caller sends a Nudge to the last hop
// next, under the same serialization, which takes every hop along. It touches the state Wrap does.
func (p *Path) Ratchet(now time.Time, every time.Duration) (bool, error) {
	moved := false
	for i, s := range p.fwd {
		ok, err := s.ratchet(now, every)
		if err != nil {
			return moved, fmt.Errorf("hop %d: %w", i+1, err)
		}
		moved = moved || ok
	}
	return moved, nil
}

// Nudge seals a forward cell for hop as Wrap does, but does not count it as use of any key it seals
// under: it tells the hops to follow a Ratchet, and carries nothing worth a ratchet of its own.
func (p *Path) Nudge(cell []byte, hop int) error {
	if err := p.Wrap(cell, hop); err != nil {
		return err
	}
	for _, s := range p.fwd[:hop] {
		s.nudges++
	}
	return nil
}

// Expire erases every backward generation kept for cells delayed past a hop's last ratchet once it has
// been kept for window, and returns how many it erased. It touches the state Unwrap does.
func (p *Path) Expire(now time.Time, window time.Duration) int {
	n := 0
	for _, o := range p.bwd {
		if o.expire(now, window) {
			n++
		}
	}
	return n
}

// Epochs returns the generations of hop's keys (1 for the first hop): the forward key's as the client
// seals with it, the backward key's as the client last followed it. It reads both directions' state:
// call it only with both serialized.
func (p *Path) Epochs(hop int) (forward, backward uint64) {
	if hop < 1 || hop > len(p.fwd) {
		return 0, 0
	}
	return p.fwd[hop-1].gen.epoch, p.bwd[hop-1].cur.epoch
}
