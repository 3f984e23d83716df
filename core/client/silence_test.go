package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A circuit whose middle swallows every cell towards the exit (its link to the client stays up, so
// nothing tears the circuit down) carries the client's data away and nothing back: Unanswered says
// since when, and FirstSilentHop finds the exit the first hop that does not answer. When data comes
// back, the circuit is answered again.
func TestSilentCircuitIsSeen(t *testing.T) {
	var swallow atomic.Bool
	n, circ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
		if forward && swallow.Load() {
			return nil
		}
		return [][]byte{msg}
	}, 1)
	waitFor(t, 2*time.Second, "the exit to see the datagram", func() bool { e, _ := n.counts(); return e == 1 })
	if err := n.exitCircuit().Send(datagram(1, 50)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the answer", func() bool { return circ.Unanswered().IsZero() })

	swallow.Store(true)
	before := time.Now()
	if err := circ.Send(datagram(2, 50)); err != nil {
		t.Fatal(err)
	}
	if u := circ.Unanswered(); u.IsZero() || u.Before(before) {
		t.Fatalf("unanswered since %v after a send at %v with nothing back", u, before)
	}
	first := circ.Unanswered()
	circ.Send(datagram(3, 50))
	if circ.Unanswered() != first {
		t.Fatal("a second send moved the start of the silence")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if hop := circ.FirstSilentHop(ctx, 300*time.Millisecond); hop != 3 {
		t.Fatalf("first silent hop %d, want 3 (the middle answers for itself, the exit is cut off)", hop)
	}
	// The guard's and the middle's echoes say nothing of the way to the exit: the silence goes on.
	if circ.Unanswered() != first {
		t.Fatalf("unanswered since %v after probing, want %v still", circ.Unanswered(), first)
	}
	swallow.Store(false)
	if err := n.exitCircuit().Send(datagram(5, 50)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the circuit answered again", func() bool { return circ.Unanswered().IsZero() })
	if hop := circ.FirstSilentHop(ctx, time.Second); hop != 0 {
		t.Fatalf("first silent hop %d on a healthy circuit", hop)
	}
}
