package client_test

import (
	"context"
	"testing"
	"time"
)

func TestProbeEachHop(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	circ := n.build(0, 1, 2)
	defer circ.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for hop := 1; hop <= 3; hop++ {
		r, err := circ.Probe(ctx, hop, 64, 1200)
		if err != nil {
			t.Fatalf("hop %d: %v", hop, err)
		}
		if r.Sent != 64 || r.Echoed != 64 || r.RTT <= 0 || r.BytesPerSecond <= 0 {
			t.Fatalf("hop %d: %+v", hop, r)
		}
	}
	if _, err := circ.Probe(ctx, 4, 1, 100); err == nil {
		t.Fatal("probed a hop the circuit does not have")
	}
	if _, err := circ.Probe(ctx, 1, 0, 100); err == nil {
		t.Fatal("probed with no probes")
	}
}

func TestProbeOfAKilledHopTimesOut(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	circ := n.build(0, 1, 2)
	defer circ.Close()
	n.conns[2].Close() // the exit stops answering
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if r, err := circ.Probe(ctx, 3, 4, 100); err == nil {
		t.Fatalf("a dead hop echoed: %+v", r)
	}
}
