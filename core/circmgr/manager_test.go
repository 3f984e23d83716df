package circmgr

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/relay"
)

// fakeNet builds circuits through relays that are alive, and keeps exit sessions by token as an exit
// does.
type fakeNet struct {
	mu       sync.Mutex
	dead     map[byte]bool // by the first byte of the identity
	sessions map[[cell.TokenLen]byte]bool
	circuits []*fakeCircuit
	next     byte
}

func newFakeNet() *fakeNet {
	return &fakeNet{dead: map[byte]bool{}, sessions: map[[cell.TokenLen]byte]bool{}}
}

type fakeCircuit struct {
	n    *fakeNet
	path []relay.Info
	done chan struct{}
	once sync.Once
	err  error
}

func (n *fakeNet) Build(ctx context.Context, path []relay.Info) (Circuit, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range path {
		if n.dead[r.Identity[0]] {
			return nil, errors.New("step timeout")
		}
	}
	c := &fakeCircuit{n: n, path: path, done: make(chan struct{})}
	n.circuits = append(n.circuits, c)
	return c, nil
}

func (c *fakeCircuit) Begin(_ context.Context, token [cell.TokenLen]byte) ([cell.TokenLen]byte, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	if c.n.sessions[token] {
		return token, nil
	}
	c.n.next++
	var t [cell.TokenLen]byte
	t[0], t[1] = c.path[2].Identity[0], c.n.next
	c.n.sessions[t] = true
	return t, nil
}

func (c *fakeCircuit) Done() <-chan struct{} { return c.done }
func (c *fakeCircuit) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}
func (c *fakeCircuit) Close() { c.kill(errors.New("closed by the client")) }
func (c *fakeCircuit) kill(err error) {
	c.once.Do(func() { c.err = err; close(c.done) })
}

// kill makes a relay die: circuits through it end, and no build through it works.
func (n *fakeNet) kill(name string, relays []Relay) {
	n.mu.Lock()
	var id byte
	for _, r := range relays {
		if r.Name == name {
			id = r.Info.Identity[0]
		}
	}
	n.dead[id] = true
	var hit []*fakeCircuit
	for _, c := range n.circuits {
		for _, r := range c.path {
			if r.Identity[0] == id {
				hit = append(hit, c)
			}
		}
	}
	n.mu.Unlock()
	for _, c := range hit {
		c.kill(errors.New("link to " + name + " is dead"))
	}
}

func relays() []Relay {
	var out []Relay
	for i, name := range []string{"r1", "r2", "r3", "r4", "r5", "x1", "x2"} {
		r := Relay{Name: name, Exit: name[0] == 'x'}
		r.Info.Identity[0] = byte(i + 1)
		out = append(out, r)
	}
	return out
}

func start(t *testing.T, n *fakeNet, exit string) (*Manager, chan []Relay) {
	t.Helper()
	got := make(chan []Relay, 16)
	m, err := New(Config{
		Builder: n, Relays: relays(), Exit: exit, Backoff: time.Millisecond, SameExitFor: 200 * time.Millisecond,
		OnCircuit: func(_ Circuit, p []Relay) { got <- p },
		Rand:      rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m, got
}

func await(t *testing.T, got chan []Relay) []Relay {
	t.Helper()
	select {
	case p := <-got:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no new circuit")
		return nil
	}
}

func TestPathsAreDistinctAndEndAtAnExit(t *testing.T) {
	p, err := NewListPicker(relays(), "", rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	var guard string
	for attempt := range 50 {
		path, err := p.Pick(nil, []Relay{relays()[1]}, attempt)
		if err != nil {
			t.Fatal(err)
		}
		if !path[2].Exit || path[0].Name == path[1].Name || path[1].Name == path[2].Name || path[0].Name == path[2].Name {
			t.Fatalf("bad path %v", names(path))
		}
		if path[0].Exit || path[1].Exit {
			t.Fatalf("an exit used as guard or middle while plain relays were free: %v", names(path))
		}
		if path[0].Name == "r2" || path[1].Name == "r2" {
			t.Fatalf("an avoided relay was used: %v", names(path))
		}
		if guard != "" && path[0].Name != guard {
			t.Fatalf("the guard changed from %s to %s while it was not avoided", guard, path[0].Name)
		}
		guard = path[0].Name
	}
	// Three relays in all: exits stand in as guard or middle.
	small := []Relay{relays()[0], relays()[5], relays()[6]}
	p, _ = NewListPicker(small, "x1", rand.New(rand.NewPCG(3, 4)))
	if path, err := p.Pick(nil, nil, 0); err != nil || path[2].Name != "x1" {
		t.Fatalf("small network: %v %v", path, err)
	}
}

func TestMiddleDiesSameExitSameSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, got := start(t, n, "")
	defer m.Close()
	first := await(t, got)
	n.kill(first[1].Name, relays())
	second := await(t, got)
	if second[2].Name != first[2].Name || second[1].Name == first[1].Name {
		t.Fatalf("rebuilt %v after %v died", names(second), first[1].Name)
	}
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	r := m.Status().Reroutes[0]
	if !r.SameSession || r.Gap() < 0 || r.Why == "" {
		t.Fatalf("reroute %+v", r)
	}
	if !m.Status().Up {
		t.Fatal("status says the circuit is down")
	}
}

func TestGuardDiesAnotherGuard(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, got := start(t, n, "x2")
	defer m.Close()
	first := await(t, got)
	n.kill(first[0].Name, relays())
	second := await(t, got)
	if second[0].Name == first[0].Name || second[2].Name != "x2" {
		t.Fatalf("rebuilt %v after the guard %v died", names(second), first[0].Name)
	}
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	if !m.Status().Reroutes[0].SameSession {
		t.Fatal("the session was not kept")
	}
}

func TestExitDiesMovesOnWithNewSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, got := start(t, n, "")
	defer m.Close()
	first := await(t, got)
	n.kill(first[2].Name, relays())
	second := await(t, got)
	if second[2].Name == first[2].Name || !second[2].Exit {
		t.Fatalf("rebuilt %v after the exit %v died", names(second), first[2].Name)
	}
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	if r := m.Status().Reroutes[0]; r.SameSession || r.Gap() < 200*time.Millisecond {
		t.Fatalf("moving exits: %+v (the same exit is tried for SameExitFor first)", r)
	}
}

func TestPinnedExitIsKept(t *testing.T) {
	n := newFakeNet()
	m, got := start(t, n, "x1")
	first := await(t, got)
	if first[2].Name != "x1" {
		t.Fatalf("path %v ignores the chosen exit", names(first))
	}
	m.Close()
	if m.Status().Up {
		t.Fatal("up after Close")
	}
	if _, err := New(Config{Builder: n, Relays: relays(), Exit: "r1"}); err == nil {
		t.Fatal("a relay that is not an exit was accepted as the exit")
	}
	if _, err := New(Config{Builder: n, Relays: relays()[:5]}); err == nil {
		t.Fatal("a list without exits was accepted")
	}
}

func TestStartGivesUpWithTheContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	for _, r := range relays() {
		n.kill(r.Name, relays())
	}
	m, _ := New(Config{Builder: n, Relays: relays(), Backoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.Start(ctx); err == nil {
		t.Fatal("started with every relay dead")
	}
	if m.Status().Failures == 0 {
		t.Fatal("failures not counted")
	}
	m.Close()
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("timed out")
}
