package onion

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestGapsCountDroppedCells is a middle relay that drops one cell in every few to mark the flow for a
// colluding exit: the exit's forward layer counts exactly the cells it dropped, and the client's
// backward layer of the exit counts exactly the cells the middle dropped on the way back; the hops
// before the dropper see nothing.
func TestGapsCountDroppedCells(t *testing.T) {
	c := threeHops(t)
	const cells, every = 201, 7 // the last cell arrives: a loss after the last arrival leaves no gap
	dropped := 0
	for i := range cells {
		cell := c.wrapForward(t, SmallSize, 3, byte(i))
		dst := make([]byte, len(cell))
		if _, _, err := c.hops[0].Peel(dst, cell, true); err != nil {
			t.Fatal(err)
		}
		if i%every == 3 {
			dropped++ // the middle peels it too, then drops it
			_, _, _ = c.hops[1].Peel(make([]byte, len(cell)), dst, true)
			continue
		}
		if _, _, err := c.forward(dst, 2); err != nil {
			t.Fatal(err)
		}
	}
	if g := c.hops[2].Gaps(); g.Skipped != uint64(dropped) || g.Late != 0 {
		t.Fatalf("exit's forward gaps %+v, want %d skipped", g, dropped)
	}
	for d := 1; d <= 2; d++ {
		if g := c.hops[d-1].Gaps(); g != (Gaps{}) {
			t.Fatalf("hop %d counted %+v, though every cell reached it", d, g)
		}
	}

	dropped = 0
	for i := range cells {
		cell := c.originate(t, SmallSize, 3, byte(i))
		if i%every == 5 {
			dropped++
			continue
		}
		if _, _, err := c.backward(cell, 3); err != nil {
			t.Fatal(err)
		}
	}
	if g := c.path.Gaps(3); g.Missing() != uint64(dropped) || g.Skipped != uint64(dropped) {
		t.Fatalf("client's gaps of the exit's layer %+v, want %d", g, dropped)
	}
	for d := 1; d <= 2; d++ {
		if g := c.path.Gaps(d); g != (Gaps{}) {
			t.Fatalf("client's gaps of hop %d: %+v, though that hop sealed nothing that was lost", d, g)
		}
	}
	if g := c.path.Gaps(4); g != (Gaps{}) {
		t.Fatalf("gaps of a hop the path lacks: %+v", g)
	}
}

// TestGapsTellReorderingFromLoss: cells that come out of order fill the gaps they opened (Late), so
// only the lost ones remain Missing; a replay or a forgery moves nothing.
func TestGapsTellReorderingFromLoss(t *testing.T) {
	c := threeHops(t)
	var cells [][]byte
	for i := range 100 {
		cells = append(cells, c.wrapForward(t, SmallSize, 3, byte(i)))
	}
	lost := map[int]bool{0: true, 17: true, 50: true, 51: true, 99: false} // the last lost one leaves no gap
	r := rand.New(rand.NewPCG(3, 4))
	order := r.Perm(len(cells))
	for _, i := range order {
		if lost[i] || i == 99 {
			continue
		}
		if _, _, err := c.forward(cells[i], 1); err != nil {
			t.Fatal(err)
		}
	}
	g := c.hops[2].Gaps()
	if g.Missing() != 4 || g.Late == 0 {
		t.Fatalf("gaps %+v: want 4 missing (cells 0, 17, 50, 51) and some late", g)
	}
	// A replay and a forged cell are refused before they touch the counts.
	_, _, _ = c.forward(cells[1], 1)
	forged := bytes.Clone(cells[99])
	forged[5] ^= 1
	_, _, _ = c.forward(forged, 1)
	if got := c.hops[2].Gaps(); got != g {
		t.Fatalf("a replay and a forgery moved the gaps from %+v to %+v", g, got)
	}
}

// TestGapsAcrossAGeneration: cells lost just after the sender moved to its next key generation are
// counted too (the new generation's counters start again at 0).
func TestGapsAcrossAGeneration(t *testing.T) {
	c := threeHops(t)
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 1), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.path.Rotate(3); err != nil {
		t.Fatal(err)
	}
	c.wrapForward(t, SmallSize, 3, 2) // the first two cells of the new generation are lost
	c.wrapForward(t, SmallSize, 3, 3)
	if _, _, err := c.forward(c.wrapForward(t, SmallSize, 3, 4), 1); err != nil {
		t.Fatal(err)
	}
	if g := c.hops[2].Gaps(); g != (Gaps{Skipped: 2}) {
		t.Fatalf("gaps %+v, want the 2 lost cells", g)
	}
}
