package client_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// TestDroppedCellsAreCountedAsGaps is a middle relay that drops one data cell in ten each way, the
// watermark a colluding middle (or guard) writes for the other end to read in the layer counters: the
// exit counts exactly the cells dropped towards it and the client exactly those dropped towards it.
func TestDroppedCellsAreCountedAsGaps(t *testing.T) {
	const total, every = 200, 10 // the last cell passes: a loss after the last arrival leaves no gap
	var (
		armed   atomic.Bool // only data: the build's cells pass the middle too
		mu      sync.Mutex
		seen    = map[bool]int{}
		dropped = map[bool]int{}
	)
	n, circ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
		if _, cmd := header(msg); cmd != cell.Relay || !armed.Load() {
			return [][]byte{msg}
		}
		mu.Lock()
		defer mu.Unlock()
		seen[forward]++
		if seen[forward]%every == every/2 {
			dropped[forward]++
			return nil
		}
		return [][]byte{msg}
	}, 0)
	armed.Store(true)
	for i := range total {
		if err := circ.Send(datagram(uint32(i), 100)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	want := total - total/every
	waitFor(t, 5*time.Second, "the exit to get every datagram not dropped", func() bool { e, _ := n.counts(); return e == want })
	ec := n.exitCircuit()
	for i := range total {
		if err := ec.Send(datagram(uint32(i), 100)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	waitFor(t, 5*time.Second, "the client to get every datagram not dropped", func() bool { _, c := n.counts(); return c == want })

	mu.Lock()
	fwd, bwd := dropped[true], dropped[false]
	mu.Unlock()
	if fwd != total/every || bwd != total/every {
		t.Fatalf("the middle dropped %d forward and %d backward, want %d each", fwd, bwd, total/every)
	}
	if g := n.relays[2].Stats().ExitGaps; g != (onion.Gaps{Skipped: uint64(fwd)}) {
		t.Errorf("exit counted gaps %+v, want %d skipped", g, fwd)
	}
	if g := n.client.Stats().CellGaps; g != (onion.Gaps{Skipped: uint64(bwd)}) {
		t.Errorf("client counted gaps %+v, want %d skipped", g, bwd)
	}
	for i, r := range n.relays[:2] {
		if g := r.Stats().ExitGaps; g != (onion.Gaps{}) {
			t.Errorf("relay %d, not the circuit's end, counted gaps %+v", i, g)
		}
	}
}
