package circmgr

import (
	"context"
	"errors"
	"github.com/meshvpn/meshvpn/core/netdir"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// startLogged is start with a switchLog: which circuits were open at each switch. tweak, if set,
// changes the configuration further.
func startLogged(t *testing.T, n *fakeNet, exit string, tweak func(*Config)) (*Manager, *switchLog) {
	t.Helper()
	log := &switchLog{}
	m := startWith(t, n, exit, func(c *Config) {
		c.OnCircuit, c.Picker = log.onCircuit, mustListPicker(t, relays(), exit, rand.New(rand.NewPCG(7, 8)))
		if tweak != nil {
			tweak(c)
		}
	})
	t.Cleanup(m.Close)
	return m, log
}

// target is the Target for the exit named in the relay list (empty: any), pinned when named.
func target(t *testing.T, m *Manager, exit string) Target {
	t.Helper()
	p, err := m.cfg.Picker.(*listPicker).WithExit(exit)
	if err != nil {
		t.Fatal(err)
	}
	asked := exit
	if asked == "" {
		asked = "random"
	}
	return Target{Picker: p, Pinned: exit != "", Asked: asked}
}

func retarget(m *Manager, to Target) (Move, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.Retarget(ctx, to)
}

func (l *switchLog) snapshot() ([][]netdir.Relay, []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]netdir.Relay(nil), l.paths...), append([]bool(nil), l.openAt...)
}

// TestRetargetSwitchesToTheNewExit: set-exit builds a circuit to the new exit with a new session and
// switches to it while the old circuit is still open, then closes the old one; the guard is kept; status
// records the move; and the new exit, named, is pinned: rebuilds keep to it.
func TestRetargetSwitchesToTheNewExit(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, log := startLogged(t, n, "x1", nil)
	defer m.Close()
	first := m.Status().Path
	mv, err := retarget(m, target(t, m, "x2"))
	if err != nil {
		t.Fatal(err)
	}
	if mv.From != "x1" || mv.To != "x2" || mv.Stayed || mv.Asked != "x2" || mv.Path[len(mv.Path)-1] != "x2" {
		t.Fatalf("move %+v", mv)
	}
	s := m.Status()
	if !s.Up || s.Path[2].Name != "x2" || s.Path[0].Name != first[0].Name || !s.Pinned || len(s.Moves) != 1 {
		t.Fatalf("after set-exit: up %v, path %v (before %v), pinned %v, moves %+v", s.Up, names(s.Path), names(first), s.Pinned, s.Moves)
	}
	paths, open := log.snapshot()
	if len(paths) != 2 || !open[0] {
		t.Fatalf("switches %v, old circuit open at the switch: %v (want make before break)", paths, open)
	}
	n.mu.Lock()
	old := n.circuits[0]
	n.mu.Unlock()
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the circuit to the old exit was not closed")
	}
	// A new session at x2: the fake exit numbers sessions by their first byte, the exit's.
	n.mu.Lock()
	sessions := 0
	for _, at := range n.sessions {
		if at == relays()[6].Identity[0] {
			sessions++
		}
	}
	n.mu.Unlock()
	if sessions != 1 {
		t.Fatalf("%d sessions at x2, want the one set-exit opened", sessions)
	}
	// Pinned: x2 unreachable for longer than SameExitFor, and the rebuilds still wait for it.
	n.kill("x2", relays())
	time.Sleep(400 * time.Millisecond)
	if p := m.Status().Path; m.Status().Up && p[2].Name != "x2" {
		t.Fatalf("moved from the pinned exit to %v", names(p))
	}
	n.revive("x2", relays())
	waitFor(t, func() bool { return m.Status().Up && len(m.Status().Reroutes) == 1 })
	if r := m.Status().Reroutes[0]; !r.SameSession || r.Path[2] != "x2" {
		t.Fatalf("rebuild after set-exit: %+v", r)
	}
}

// TestRetargetFailureKeepsTheOldCircuit: when no circuit to the new exit can be built, set-exit says so
// and changes nothing: the old circuit carries on, and the old choice (x1, pinned) still rules rebuilds.
func TestRetargetFailureKeepsTheOldCircuit(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, log := startLogged(t, n, "x1", nil)
	defer m.Close()
	n.unreachable("x2", relays())
	before := n.tried()
	_, err := retarget(m, target(t, m, "x2"))
	if err == nil || !strings.Contains(err.Error(), "x1 stays") {
		t.Fatalf("set-exit to an unreachable exit: %v", err)
	}
	if tries := n.tried() - before; tries != retargetTries {
		t.Fatalf("%d builds, want %d", tries, retargetTries)
	}
	s := m.Status()
	if !s.Up || s.Path[2].Name != "x1" || len(s.Moves) != 0 || !s.Pinned {
		t.Fatalf("after a failed set-exit: up %v, path %v, moves %+v", s.Up, names(s.Path), s.Moves)
	}
	if paths, _ := log.snapshot(); len(paths) != 1 {
		t.Fatalf("switched circuits: %v", paths)
	}
	n.mu.Lock()
	old := n.circuits[0]
	n.mu.Unlock()
	if old.Err() != nil {
		t.Fatalf("the old circuit was closed: %v", old.Err())
	}
	// The old choice still holds: a middle dies, and the rebuild goes back to x1 with its session.
	n.kill(s.Path[1].Name, relays())
	waitFor(t, func() bool { return m.Status().Up && len(m.Status().Reroutes) == 1 })
	if r := m.Status().Reroutes[0]; r.Path[2] != "x1" || !r.SameSession {
		t.Fatalf("rebuild after a failed set-exit: %+v", r)
	}
}

// TestRetargetUnpinsAndPins: from a named exit to "any exit" the exit is no longer pinned (rebuilds move
// on when it stays down); naming one pins again.
func TestRetargetUnpinsAndPins(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, _ := startLogged(t, n, "x1", nil)
	defer m.Close()
	mv, err := retarget(m, target(t, m, ""))
	if err != nil {
		t.Fatal(err)
	}
	if mv.To != "x2" || m.Status().Pinned {
		t.Fatalf("set-exit random from x1: %+v, pinned %v (want another exit, unpinned)", mv, m.Status().Pinned)
	}
	n.kill("x2", relays()) // unpinned: after SameExitFor the rebuild moves to x1
	waitFor(t, func() bool { s := m.Status(); return s.Up && s.Path[2].Name == "x1" })
	if mv, err = retarget(m, target(t, m, "x2")); err == nil {
		t.Fatalf("set-exit to a dead exit worked: %+v", mv)
	}
	n.revive("x2", relays())
	if mv, err = retarget(m, target(t, m, "x2")); err != nil || mv.To != "x2" || !m.Status().Pinned {
		t.Fatalf("set-exit x2: %+v %v, pinned %v", mv, err, m.Status().Pinned)
	}
	if got := len(m.Status().Moves); got != 2 {
		t.Fatalf("%d moves recorded, want 2", got)
	}
}

// TestRetargetToTheCurrentExitBuildsNothing: asking for the exit in use changes the choice (here: pins
// it) and keeps the circuit and its connections.
func TestRetargetToTheCurrentExitBuildsNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, _ := startLogged(t, n, "", nil)
	defer m.Close()
	cur := m.Status().Path[2].Name
	before := n.tried()
	mv, err := retarget(m, target(t, m, cur))
	if err != nil || !mv.Stayed || mv.To != cur || !m.Status().Pinned {
		t.Fatalf("set-exit to the exit in use: %+v %v", mv, err)
	}
	if n.tried() != before {
		t.Fatal("a circuit was built")
	}
}

// TestRetargetWhileRebuilding: the pinned exit is down and the client keeps trying it; set-exit to
// another exit ends that with a circuit to the new one.
func TestRetargetWhileRebuilding(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, _ := startLogged(t, n, "x1", nil)
	defer m.Close()
	before := n.tried()
	n.kill("x1", relays())
	waitFor(t, func() bool { return n.tried() > before+1 }) // rebuilding: builds to x1 fail
	mv, err := retarget(m, target(t, m, "x2"))
	if err != nil || mv.To != "x2" {
		t.Fatalf("set-exit while rebuilding: %+v %v", mv, err)
	}
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	s := m.Status()
	if !s.Up || s.Path[2].Name != "x2" || s.Reroutes[0].SameSession {
		t.Fatalf("after set-exit while rebuilding: up %v, path %v, reroute %+v", s.Up, names(s.Path), s.Reroutes[0])
	}
}

func TestRetargetBeforeStartAndAfterClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, err := New(Config{Builder: n, Picker: mustListPicker(t, relays(), "", rand.New(rand.NewPCG(1, 2)))})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.cfg.Picker.(*listPicker).WithExit("x2")
	if _, err := retarget(m, Target{Picker: p}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	if _, err := m.cfg.Picker.(*listPicker).WithExit("r1"); err == nil {
		t.Fatal("a relay that is not an exit was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := retarget(m, Target{Picker: p}); err == nil {
		t.Fatal("retarget after Close worked")
	}
}
