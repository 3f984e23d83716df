package relay

import (
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
)

// A neighbour that opens circuits past MaxCircuitsPerLink is refused, and counted, while another link
// still gets its circuits; a circuit it closes makes room for one more.
func TestLinkCannotOpenCircuitsPastItsCap(t *testing.T) {
	const perLink = 5
	r := newTestRelay(t, Config{MaxCircuitsPerLink: perLink, CreateRate: 1e6, CreateBurst: 1e6})
	hog, other := newFakeLink(false), newFakeLink(false)
	for i := range 3 * perLink {
		r.onMessage(hog, createCell(t, r, idFrom(r, hog, i)))
	}
	answered := func(l *fakeLink, want int) func() bool {
		return func() bool { return len(l.received(cell.Created))+len(l.received(cell.Destroy)) >= want }
	}
	waitFor(t, 10*time.Second, "every CREATE answered", answered(hog, 3*perLink))
	if got := len(hog.received(cell.Created)); got != perLink {
		t.Fatalf("%d circuits opened on one link, want %d", got, perLink)
	}
	for id, reason := range hog.destroys() {
		if reason != cell.ReasonResource {
			t.Fatalf("circuit %d refused with %v, want resource", id, reason)
		}
	}
	if s := r.Stats(); s.DropLinkCircuits != 2*perLink || s.CircuitsOpen != perLink {
		t.Fatalf("stats %+v: want %d refusals counted and %d circuits open", s, 2*perLink, perLink)
	}

	r.onMessage(other, createCell(t, r, idFrom(r, other, 0)))
	waitFor(t, 5*time.Second, "the other link's CREATE answered", answered(other, 1))
	if len(other.received(cell.Created)) != 1 {
		t.Fatal("another link was refused because of the first one")
	}

	first := hog.received(cell.Created)[0].Circuit
	destroy := make([]byte, cell.HeaderLen+r.cfg.Sizes[0])
	cell.PutHeader(destroy, cell.Header{Circuit: first, Command: cell.Destroy})
	cell.EncodeDestroy(destroy[cell.HeaderLen:], cell.ReasonRequested)
	r.onMessage(hog, destroy)
	r.onMessage(hog, createCell(t, r, idFrom(r, hog, 100)))
	waitFor(t, 5*time.Second, "the CREATE after a DESTROY answered", answered(hog, 3*perLink+1))
	if got := len(hog.received(cell.Created)); got != perLink+1 {
		t.Fatalf("after closing one of its circuits the link opened %d in all, want %d", got, perLink+1)
	}
}

// One neighbour flooding CREATEs gets CreateBurst of them through at once and CreateRate a second after
// that; the rest are refused before any handshake work and counted, and another link's CREATE is
// answered in the middle of the flood.
func TestCreateFloodIsRateLimitedPerLink(t *testing.T) {
	const burst, rate = 20, 10
	r := newTestRelay(t, Config{CreateRate: rate, CreateBurst: burst, CreateQueue: 64})
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	flooder, other := newFakeLink(false), newFakeLink(false)
	const flood = 500
	for i := range flood {
		r.onMessage(flooder, createCell(t, r, idFrom(r, flooder, i)))
		if i == flood/2 {
			r.onMessage(other, createCell(t, r, idFrom(r, other, 0)))
		}
	}
	waitFor(t, 10*time.Second, "the flood answered", func() bool {
		return len(flooder.received(cell.Created))+len(flooder.received(cell.Destroy)) >= flood
	})
	waitFor(t, 5*time.Second, "the other link answered", func() bool { return len(other.received(cell.Created)) == 1 })
	if got := len(flooder.received(cell.Created)); got != burst {
		t.Fatalf("the flooder opened %d circuits, want the burst of %d", got, burst)
	}
	if s := r.Stats(); s.DropCreateRate != flood-burst || s.DropRateLimited != 0 {
		t.Fatalf("stats %+v: want %d CREATEs refused for the link's rate, none for the shared queue", s, flood-burst)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	for i := range 2 * rate {
		r.onMessage(flooder, createCell(t, r, idFrom(r, flooder, flood+i)))
	}
	waitFor(t, 10*time.Second, "the second second's CREATEs answered", func() bool {
		return len(flooder.received(cell.Created))+len(flooder.received(cell.Destroy)) >= flood+2*rate
	})
	if got := len(flooder.received(cell.Created)); got != burst+rate {
		t.Fatalf("a second later the flooder had %d circuits, want %d", got, burst+rate)
	}
}
