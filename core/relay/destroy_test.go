package relay

import (
	"testing"

	"github.com/meshvpn/meshvpn/core/cell"
)

func destroyCell(r *Relay, id cell.ID, reason byte) []byte {
	msg := make([]byte, cell.HeaderLen+r.cfg.Sizes[0])
	cell.PutHeader(msg, cell.Header{Circuit: id, Command: cell.Destroy})
	msg[cell.HeaderLen] = reason
	return msg
}

// A colluding guard and exit would use the DESTROY reason as a channel through an honest middle, and
// a middle's own reason would tell the exit what it caught. A relay passes on a teardown it did not
// start with one fixed reason both ways, gives its own reason only towards the client, and counts a
// reason byte it does not know.
func TestDestroyReasonsDoNotCrossARelay(t *testing.T) {
	r := newTestRelay(t, Config{})
	for _, reason := range []byte{byte(cell.ReasonAuth), byte(cell.ReasonTimeout), byte(cell.ReasonNone), 0xa7} {
		guard, exit := newFakeLink(false), newFakeLink(false)
		fromGuard, _ := middleCircuit(t, r, guard, exit, 1)
		fromExit, _ := middleCircuit(t, r, guard, exit, 2)
		r.onMessage(guard, destroyCell(r, fromGuard.prev.id, reason))
		r.onMessage(exit, destroyCell(r, fromExit.next.Load().id, reason))
		if got, ok := exit.destroys()[fromGuard.next.Load().id]; !ok || got != cell.ReasonDestroyed {
			t.Errorf("the guard's DESTROY (reason %d) reached the exit as %v (sent %v)", reason, got, ok)
		}
		if got, ok := guard.destroys()[fromExit.prev.id]; !ok || got != cell.ReasonDestroyed {
			t.Errorf("the exit's DESTROY (reason %d) reached the guard as %v (sent %v)", reason, got, ok)
		}
		if len(guard.destroys()) != 1 || len(exit.destroys()) != 1 {
			t.Errorf("a DESTROY went back to where it came from: guard %v, exit %v", guard.destroys(), exit.destroys())
		}
	}
	if s := r.Stats(); s.DropDestroyReason != 2 {
		t.Errorf("%d unknown reasons counted, want 2", s.DropDestroyReason)
	}

	// Its own teardown: tampering caught here. The client's side hears why; the exit's does not.
	guard, exit := newFakeLink(false), newFakeLink(false)
	c, keys := middleCircuit(t, r, guard, exit, 3)
	tampered := forwardCell(t, c, keys)
	tampered[cell.HeaderLen+20] ^= 1
	r.onMessage(guard, tampered)
	if got := guard.destroys()[c.prev.id]; got != cell.ReasonAuth {
		t.Errorf("the client's side was told %v, want auth", got)
	}
	if got := exit.destroys()[c.next.Load().id]; got != cell.ReasonDestroyed {
		t.Errorf("the exit's side was told %v, want only %v", got, cell.ReasonDestroyed)
	}
}
