package relay

import (
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
)

// An adversary makes the relay hold memory by flooding cells into a circuit whose next hop does not
// read them. The relay's queues stay under MaxQueueMemory, and when they reach it the circuit whose
// cells have waited longest — the flooder's — is destroyed and counted, while a circuit whose cells
// were queued later survives.
func TestFloodIntoStuckNextHopIsReclaimed(t *testing.T) {
	const limitCells = 200
	r := newTestRelay(t, Config{MaxQueueMemory: limitCells * pool.Size})
	floodPrev, floodNext := newFakeLink(false), newFakeLink(true)
	otherPrev, otherNext := newFakeLink(false), newFakeLink(true)
	t.Cleanup(func() { close(floodNext.gate); close(otherNext.gate) }) // before the relay closes
	flood, floodKeys := middleCircuit(t, r, floodPrev, floodNext, 1)
	other, otherKeys := middleCircuit(t, r, otherPrev, otherNext, 2)

	for range 150 {
		r.onMessage(floodPrev, forwardCell(t, flood, floodKeys))
	}
	time.Sleep(20 * time.Millisecond) // the other circuit's cells are younger by this much
	for range 40 {
		r.onMessage(otherPrev, forwardCell(t, other, otherKeys))
	}
	peak := r.queued.Load()
	for i := 0; i < 5000 && !flood.dead.Load(); i++ {
		r.onMessage(floodPrev, forwardCell(t, flood, floodKeys))
		peak = max(peak, r.queued.Load())
	}
	waitFor(t, 5*time.Second, "the flooded circuit to be destroyed", func() bool { return r.Stats().CircuitsReclaimed > 0 })
	if peak > limitCells {
		t.Errorf("%d cells queued at the peak, want at most %d", peak, limitCells)
	}
	s := r.Stats()
	if s.CircuitsReclaimed != 1 || s.DropMemory == 0 {
		t.Errorf("stats %+v: want 1 circuit reclaimed and cells dropped at the bound", s)
	}
	if other.dead.Load() {
		t.Error("the circuit with younger cells was destroyed too")
	}
	if got := floodPrev.destroys()[flood.prev.id]; got != cell.ReasonResource {
		t.Errorf("the flooder was told %v, want resource", got)
	}
	// Below the low-water mark again, and cells flow on the surviving circuit.
	waitFor(t, 5*time.Second, "the queues to shrink", func() bool { return r.queued.Load() <= int64(lowWater*limitCells) })
	r.onMessage(otherPrev, forwardCell(t, other, otherKeys))
	if r.Stats().DropMemory != s.DropMemory {
		t.Error("a cell was dropped for memory after the reclaim")
	}
}
