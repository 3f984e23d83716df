package circmgr

import (
	"github.com/meshvpn/meshvpn/core/netdir"
	"sync"
	"testing"
	"time"
)

// switchLog records, at each switch, whether the circuit being replaced was still open: a
// make-before-break switch happens while it is.
type switchLog struct {
	mu      sync.Mutex
	current Circuit
	openAt  []bool
	paths   [][]netdir.Relay
}

func (l *switchLog) onCircuit(c Circuit, p []netdir.Relay) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current != nil {
		select {
		case <-l.current.Done():
			l.openAt = append(l.openAt, false)
		default:
			l.openAt = append(l.openAt, true)
		}
	}
	l.current = c
	l.paths = append(l.paths, p)
}

func startWithLifetime(t *testing.T, n *fakeNet, lifetime time.Duration) (*Manager, *switchLog) {
	t.Helper()
	return startLogged(t, n, "x1", func(c *Config) { c.MaxLifetime, c.Drain = lifetime, 20*time.Millisecond })
}

// TestCircuitIsReplacedAtItsLifetime: a circuit that lives MaxLifetime is replaced by a fresh one to the
// same exit, through the same guard and another middle, switched to before the old one closes, with
// the exit session kept; and the old circuit is closed after the drain.
func TestCircuitIsReplacedAtItsLifetime(t *testing.T) {
	n := newFakeNet()
	m, log := startWithLifetime(t, n, 150*time.Millisecond)
	waitUntil(t, "three replacements", func() bool { return m.Status().Replaced >= 3 })
	s := m.Status()
	if !s.Up || len(s.Reroutes) != 0 {
		t.Fatalf("a replacement looked like a failure: %+v", s)
	}
	for _, r := range s.Replacements {
		if !r.SameSession {
			t.Fatalf("a replacement lost the session: %+v", r)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, open := range log.openAt {
		if !open {
			t.Fatalf("switch %d happened after the old circuit had closed: break before make", i+1)
		}
	}
	for i := 1; i < len(log.paths); i++ {
		prev, cur := log.paths[i-1], log.paths[i]
		if cur[0].Name != prev[0].Name || cur[2].Name != prev[2].Name {
			t.Fatalf("replacement %d changed guard or exit: %v then %v", i, names(prev), names(cur))
		}
		if cur[1].Name == prev[1].Name {
			t.Fatalf("replacement %d kept the middle %s", i, cur[1].Name)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	open := 0
	for _, c := range n.circuits {
		select {
		case <-c.done:
		default:
			open++
		}
	}
	if open > 2 { // the current one, and at most one draining
		t.Fatalf("%d circuits open: replaced circuits are not closed", open)
	}
}

// TestFailedReplacementKeepsTheCircuit: when no fresh circuit can be built (the exit refuses new ones),
// the old circuit goes on carrying traffic — nothing is torn down for a replacement — and the
// replacement happens once the exit takes circuits again.
func TestFailedReplacementKeepsTheCircuit(t *testing.T) {
	n := newFakeNet()
	m, _ := startWithLifetime(t, n, 100*time.Millisecond)
	n.unreachable("x1", relays())
	before := n.tried()
	waitUntil(t, "replacement attempts", func() bool { return n.tried() >= before+3 })
	if s := m.Status(); !s.Up || s.Replaced != 0 || len(s.Reroutes) != 0 {
		t.Fatalf("a failed replacement disturbed the circuit: %+v", s)
	}
	n.revive("x1", relays())
	waitUntil(t, "the replacement", func() bool { return m.Status().Replaced >= 1 })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
