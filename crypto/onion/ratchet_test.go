package onion

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// sweep is one tick of a circuit's owners at now: the client ratchets its forward keys and nudges every
// hop along, each relay ratchets its backward key and nudges the client, and every receiver erases what
// it kept past the window. It returns the nudges sent, for the caller to deliver (or not), the
// backward ones by the depth of the hop that sent them.
func (c *circuit) sweep(t *testing.T, now time.Time, every time.Duration) (fwdNudge []byte, bwdNudges map[int][]byte) {
	t.Helper()
	window := RatchetWindow(every)
	if moved, err := c.path.Ratchet(now, every); err != nil {
		t.Fatal(err)
	} else if moved {
		fwdNudge = make([]byte, SmallSize)
		if err := c.path.Nudge(fwdNudge, len(c.hops)); err != nil {
			t.Fatal(err)
		}
	}
	for d, h := range c.hops {
		h.Expire(now, window)
		moved, err := h.Ratchet(now, every)
		if err != nil {
			t.Fatal(err)
		}
		if moved {
			n := make([]byte, SmallSize)
			if err := h.Nudge(n); err != nil {
				t.Fatal(err)
			}
			if bwdNudges == nil {
				bwdNudges = map[int][]byte{}
			}
			bwdNudges[d+1] = n
		}
	}
	c.path.Expire(now, window)
	return fwdNudge, bwdNudges
}

// A steady light flow across many ratchet periods: every cell arrives, stragglers sealed before a
// ratchet and delivered after cells of the new generation included, and every key moved on, on both
// sides.
func TestScheduledRatchetKeepsEveryCell(t *testing.T) {
	c := threeHops(t)
	const every = time.Hour
	tick := RatchetTick(every)
	now := time.Unix(1e9, 0)
	type straggler struct {
		hop  int
		cell []byte
	}
	var held, heldBack []straggler // sealed one tick, delivered the next, after that tick's cells
	for step := range int(10 * every / tick) {
		now = now.Add(tick)
		var fresh, freshBack []straggler
		for target := 1; target <= 3; target++ {
			fresh = append(fresh, straggler{target, c.wrapForward(t, SmallSize, target, byte(step))})
			freshBack = append(freshBack, straggler{target, c.originate(t, SmallSize, target, byte(step))})
		}
		// Of each tick's cells, those to and from the exit are held back a tick: they cross the ratchet
		// when one happens in between, and arrive after cells sealed under the new key.
		for _, s := range append(fresh[:2:2], held...) {
			if got, _, err := c.forward(s.cell, 1); err != nil || got != s.hop {
				t.Fatalf("step %d: forward to %d read at %d: %v", step, s.hop, got, err)
			}
		}
		for _, s := range append(freshBack[:2:2], heldBack...) {
			if from, _, err := c.backward(s.cell, s.hop); err != nil || from != s.hop {
				t.Fatalf("step %d: backward from %d read as %d: %v", step, s.hop, from, err)
			}
		}
		held, heldBack = fresh[2:], freshBack[2:]

		fwdNudge, bwdNudges := c.sweep(t, now, every)
		if fwdNudge != nil {
			if _, _, err := c.forward(fwdNudge, 1); err != nil {
				t.Fatalf("step %d: forward nudge: %v", step, err)
			}
		}
		for from, n := range bwdNudges {
			if _, _, err := c.backward(n, from); err != nil {
				t.Fatalf("step %d: backward nudge: %v", step, err)
			}
		}
	}
	for d := 1; d <= 3; d++ {
		pf, pb := c.path.Epochs(d)
		hf, hb := c.hops[d-1].Epochs()
		if pf < 9 || pb < 9 || pf != hf || pb != hb {
			t.Fatalf("hop %d after 10 periods: client seals forward at %d, hop follows at %d; hop seals backward at %d, client follows at %d", d, pf, hf, hb, pb)
		}
	}
}

// Forward secrecy of the ratchet: a cell captured on the wire before a ratchet cannot be opened once the
// window has passed, by the receiver or with any key either side still holds, even though the circuit
// went idle after the ratchet and nothing but the nudge was sent.
func TestScheduledRatchetErasesOldKeys(t *testing.T) {
	c := threeHops(t)
	const every = time.Minute
	now := time.Unix(1e9, 0)
	c.sweep(t, now, every) // the owners see the circuit's keys for the first time

	// One cell each way, of which the adversary keeps a copy; then the circuit goes idle.
	captured := c.wrapForward(t, FullSize, 3, 1)
	capturedBack := c.originate(t, FullSize, 3, 2)
	if _, _, err := c.forward(bytes.Clone(captured), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.backward(bytes.Clone(capturedBack), 3); err != nil {
		t.Fatal(err)
	}
	var oldFwd, oldBwd [3][KeySize]byte
	for d := range 3 {
		oldFwd[d] = c.path.fwd[d].gen.key
		oldBwd[d] = c.hops[d].bwd.gen.key
	}

	// A period on, the senders ratchet and nudge; the receivers follow, keep the old keys for the
	// window, then erase them.
	now = now.Add(every)
	fwdNudge, bwdNudges := c.sweep(t, now, every)
	if fwdNudge == nil || len(bwdNudges) != 3 { // every hop sealed the captured backward cell
		t.Fatalf("ratchet due after a period: forward nudge %v, %d backward nudges", fwdNudge != nil, len(bwdNudges))
	}
	if _, _, err := c.forward(fwdNudge, 1); err != nil {
		t.Fatal(err)
	}
	for from, n := range bwdNudges {
		if _, _, err := c.backward(n, from); err != nil {
			t.Fatal(err)
		}
	}
	for now = now.Add(RatchetTick(every)); ; now = now.Add(RatchetTick(every)) {
		c.sweep(t, now, every)
		if !c.hops[2].fwd.hasPrev && !c.path.bwd[0].hasPrev && !c.path.bwd[2].hasPrev {
			break
		}
		if now.Sub(time.Unix(1e9, 0)) > 2*every {
			t.Fatal("the previous generations were kept past the window")
		}
	}

	if _, _, err := c.forward(bytes.Clone(captured), 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("captured forward cell after the window: %v, want ErrReplay (too late to open)", err)
	}
	if _, _, err := c.backward(bytes.Clone(capturedBack), 3); !errors.Is(err, ErrReplay) {
		t.Fatalf("captured backward cell after the window: %v, want ErrReplay (too late to open)", err)
	}
	for d := range 3 {
		held := [][KeySize]byte{c.path.fwd[d].gen.key, c.hops[d].fwd.cur.key, c.hops[d].fwd.prev.key,
			c.hops[d].bwd.gen.key, c.path.bwd[d].cur.key, c.path.bwd[d].prev.key}
		for _, g := range c.hops[d].fwd.ahead {
			held = append(held, g.key)
		}
		for _, g := range c.path.bwd[d].ahead {
			held = append(held, g.key)
		}
		for _, k := range held {
			if k == oldFwd[d] || k == oldBwd[d] {
				t.Fatalf("hop %d: a key that sealed the captured cells is still held after the window", d+1)
			}
		}
	}

	// The idle circuit settles: a nudge does not make its sender due again. (A backward nudge is sealed
	// as data by the hops it passes, which cannot tell, so each of them ratchets once more for it.)
	nudges := 0
	for period := range 10 {
		now = now.Add(every)
		f, b := c.sweep(t, now, every)
		if f != nil {
			t.Fatalf("period %d: the client ratcheted an idle circuit again for its nudge", period)
		}
		if period >= 3 && b != nil {
			t.Fatalf("period %d: relays still ratchet an idle circuit: %d nudges", period, len(b))
		}
		for from, n := range b {
			nudges++
			if _, _, err := c.backward(n, from); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("backward nudges after the first ratchet of an idle circuit: %d", nudges)
	// And it still works both ways.
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 3), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.backward(c.originate(t, SmallSize, 2, 4), 2); err != nil {
		t.Fatal(err)
	}
}
