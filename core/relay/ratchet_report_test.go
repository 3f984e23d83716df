package relay

import (
	crand "crypto/rand"
	"fmt"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// sinkLink is a neighbour that takes every cell and keeps none.
type sinkLink struct{ fakeLink }

func (l *sinkLink) Send([]byte) error                    { return nil }
func (l *sinkLink) SendBatch(msgs [][]byte) (int, error) { return len(msgs), nil }

// ratchetCircuits puts n first-hop circuits on prev into r's table, as CREATE would have, each with
// fresh keys, and returns them.
func ratchetCircuits(t testing.TB, r *Relay, prev Link, n int) []*circuit {
	t.Helper()
	all := make([]*circuit, 0, n)
	for i := range n {
		k := onion.HopKeys{Suite: onion.ChaCha20Poly1305}
		crand.Read(k.Forward[:])
		crand.Read(k.Backward[:])
		hop, err := onion.NewHop(k, 1)
		if err != nil {
			t.Fatal(err)
		}
		c := &circuit{seq: r.seq.Add(1), prev: end{prev, idFrom(r, prev, i)}, depth: 1, hop: hop, done: make(chan struct{})}
		c.exit = ExitCircuit{r: r, c: c}
		c.touch()
		if !r.tab.add(c.prev, c) {
			t.Fatal("circuit id taken")
		}
		all = append(all, c)
	}
	return all
}

// TestReportRatchetSweep reports what the relay's scheduled-ratchet sweep costs with 100,000 circuits:
// a sweep in which nothing is due (the usual one: a sweep runs every RatchetTick, a key is due once a
// period), and one in which every circuit's backward key is due at once and each sends its nudge. The
// per-cell path does no ratchet work at all (no clock is read there), so this is the ratchet's whole
// cost at a relay.
func TestReportRatchetSweep(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	const circuits = 100_000
	r := newTestRelay(t, Config{})
	prev := &sinkLink{}
	crand.Read(prev.peer[:])
	all := ratchetCircuits(t, r, prev, circuits)
	every := r.cfg.RatchetEvery
	tick := onion.RatchetTick(every)

	now := time.Now()
	r.ratchet(now) // the first sweep sees every key
	idle := time.Duration(1<<63 - 1)
	for range 5 {
		now = now.Add(tick)
		start := time.Now()
		r.ratchet(now)
		idle = min(idle, time.Since(start))
	}

	cellBuf := make([]byte, onion.SmallSize)
	for _, c := range all { // every circuit carried a cell back: every key will be due
		cell.PutMsg(cellBuf[:c.hop.PayloadLen(len(cellBuf))], cell.MsgData, []byte("x"))
		if err := c.hop.Originate(cellBuf); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(every)
	start := time.Now()
	r.ratchet(now)
	due := time.Since(start)
	if got := r.Stats().KeyRatchets; got != circuits {
		t.Fatalf("%d keys ratcheted, want %d", got, circuits)
	}

	share := float64(idle) / float64(tick)
	verdict := "met"
	if share > 0.01 {
		verdict = "MISSED"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "layer-key ratchet sweep, %d circuits\t per sweep\t per circuit\t share of a core\t target\t\n", circuits)
	fmt.Fprintf(w, "nothing due (every %v, at the default period %v)\t %v\t %v\t %.3f%%\t ≤1%% %s\t\n",
		tick, every, idle.Round(time.Microsecond), idle/circuits, 100*share, verdict)
	fmt.Fprintf(w, "every key due at once, a nudge each\t %v\t %v\t (once a period at most)\t \t\n",
		due.Round(time.Microsecond), due/circuits)
	w.Flush()
}
