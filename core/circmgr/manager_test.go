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
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/ticket"
)

// fakeNet builds circuits through relays that are alive, and keeps exit sessions by id as an exit
// does.
type fakeNet struct {
	mu       sync.Mutex
	dead     map[byte]bool      // by the first byte of the identity
	mute     map[byte]bool      // guards that do not answer CREATE, the link to them up
	sessions map[ticket.ID]byte // the exit (first identity byte) that has each session
	circuits []*fakeCircuit
	next     byte
	attempts [][]netdir.Relay // every path a build was asked for
	silent   time.Time        // if set, circuits are built silent since then (silence_test.go)
}

func newFakeNet() *fakeNet {
	return &fakeNet{dead: map[byte]bool{}, mute: map[byte]bool{}, sessions: map[ticket.ID]byte{}}
}

type fakeCircuit struct {
	n    *fakeNet
	path []netdir.Relay
	done chan struct{}
	once sync.Once
	err  error
}

func (n *fakeNet) Build(ctx context.Context, path []netdir.Relay) (Circuit, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.attempts = append(n.attempts, path)
	if n.mute[path[0].Identity[0]] {
		return nil, &hopError{hop: 1, linkUp: true}
	}
	for i, r := range path {
		if n.dead[r.Identity[0]] {
			return nil, &hopError{hop: i + 1}
		}
	}
	c := &fakeCircuit{n: n, path: path, done: make(chan struct{})}
	n.circuits = append(n.circuits, c)
	if !n.silent.IsZero() {
		return silentCircuit{c, n.silent}, nil
	}
	return c, nil
}

func (c *fakeCircuit) Begin(_ context.Context, prev *ticket.Ticket) (ticket.Ticket, bool, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	exit := c.path[len(c.path)-1].Identity[0]
	if prev != nil {
		if at, ok := c.n.sessions[prev.ID]; ok && at == exit {
			return ticket.Ticket{ID: prev.ID, Key: ticket.Key{prev.Key[0] + 1}}, true, nil
		}
	}
	c.n.next++
	id := ticket.ID{exit, c.n.next}
	c.n.sessions[id] = exit
	return ticket.Ticket{ID: id}, false, nil
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

// hopError is a build that failed at one hop, as *client.HopError is.
type hopError struct {
	hop    int
	linkUp bool
}

func (e *hopError) Error() string     { return "step timeout" }
func (e *hopError) FailedHop() int    { return e.hop }
func (e *hopError) GuardLinkUp() bool { return e.hop == 1 && e.linkUp }

// revive brings a relay back.
func (n *fakeNet) revive(name string, relays []netdir.Relay) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range relays {
		if r.Name == name {
			delete(n.dead, r.Identity[0])
		}
	}
}

// unreachable makes builds through a relay fail without ending the circuits through it.
func (n *fakeNet) unreachable(name string, relays []netdir.Relay) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range relays {
		if r.Name == name {
			n.dead[r.Identity[0]] = true
		}
	}
}

// tried returns how many builds were asked for so far.
func (n *fakeNet) tried() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.attempts)
}

// kill makes a relay die: circuits through it end, and no build through it works. The circuits end
// as a relay's DESTROY ends them when the relay is not their guard, and as a lost link when it is.
func (n *fakeNet) kill(name string, relays []netdir.Relay) {
	n.mu.Lock()
	var id byte
	for _, r := range relays {
		if r.Name == name {
			id = r.Identity[0]
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
		if c.path[0].Identity[0] == id {
			c.kill(&cell.Error{Reason: cell.ReasonLinkDown})
		} else {
			c.kill(&cell.Error{Reason: cell.ReasonLinkDown, Remote: true})
		}
	}
}

func relays() []netdir.Relay {
	var out []netdir.Relay
	for i, name := range []string{"r1", "r2", "r3", "r4", "r5", "x1", "x2"} {
		r := netdir.Relay{Name: name, Flags: netdir.Running}
		if name[0] == 'x' {
			r.Flags |= netdir.Exit
		}
		r.Identity[0] = byte(i + 1)
		out = append(out, r)
	}
	return out
}

// startWith starts a manager over n with the tests' configuration, as tweak changes it.
func startWith(t *testing.T, n *fakeNet, exit string, tweak func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		Builder: n, ExitPinned: exit != "", Backoff: time.Millisecond, SameExitFor: 200 * time.Millisecond,
	}
	tweak(&cfg)
	if cfg.Picker == nil {
		cfg.Picker = mustListPicker(t, relays(), exit, rand.New(rand.NewPCG(1, 2)))
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// start starts a manager that sends each new circuit's path on got.
func start(t *testing.T, n *fakeNet, exit string) (m *Manager, got chan []netdir.Relay) {
	t.Helper()
	got = make(chan []netdir.Relay, 16)
	m = startWith(t, n, exit, func(c *Config) { c.OnCircuit = func(_ Circuit, p []netdir.Relay) { got <- p } })
	return m, got
}

func await(t *testing.T, got chan []netdir.Relay) []netdir.Relay {
	t.Helper()
	select {
	case p := <-got:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no new circuit")
		return nil
	}
}

// mustListPicker is a listPicker over relays whose paths end at the exit named (empty: any).
func mustListPicker(t *testing.T, relays []netdir.Relay, exit string, r *rand.Rand) *listPicker {
	t.Helper()
	p, err := newListPicker(relays, exit, r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The tests' picker behaves as the tests assume (core/path's tests pin the same for the client's).
func TestPathsAreDistinctAndEndAtAnExit(t *testing.T) {
	p, err := newListPicker(relays(), "", rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	var guard string
	for attempt := range 50 {
		path, err := p.Pick(nil, []netdir.Relay{relays()[1]}, attempt)
		if err != nil {
			t.Fatal(err)
		}
		if !path[2].Flags.Has(netdir.Exit) || path[0].Name == path[1].Name || path[1].Name == path[2].Name || path[0].Name == path[2].Name {
			t.Fatalf("bad path %v", names(path))
		}
		if path[0].Flags.Has(netdir.Exit) || path[1].Flags.Has(netdir.Exit) {
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
	small := []netdir.Relay{relays()[0], relays()[5], relays()[6]}
	p, _ = newListPicker(small, "x1", rand.New(rand.NewPCG(3, 4)))
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
	before := n.tried()
	n.kill(first[0].Name, relays())
	second := await(t, got)
	if second[0].Name == first[0].Name || second[2].Name != "x2" {
		t.Fatalf("rebuilt %v after the guard %v died", names(second), first[0].Name)
	}
	n.mu.Lock()
	if p := n.attempts[before]; p[0].Identity == first[0].Identity {
		t.Errorf("the first rebuild went through the guard whose link had just died")
	}
	n.mu.Unlock()
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
	if second[2].Name == first[2].Name || !second[2].Flags.Has(netdir.Exit) {
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
	if _, err := New(Config{Builder: n}); err == nil {
		t.Fatal("a manager without a picker was made")
	}
}

// A middle's failure must not cost the client its guard, even when the rebuilds that follow fail for a
// while (here: the exit is unreachable for a few attempts).
func TestMiddleDiesGuardKeptThroughFailedRebuilds(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, got := start(t, n, "x1")
	defer m.Close()
	first := await(t, got)
	n.unreachable("x1", relays())
	before := n.tried()
	killed := time.Now()
	n.kill(first[1].Name, relays())
	waitFor(t, func() bool { return n.tried() >= before+6 })
	if s := m.Status(); s.Up || s.Down.Before(killed) || s.Down.After(time.Now()) {
		t.Fatalf("rebuilding: up %v, down since %v (killed at %v)", s.Up, s.Down, killed)
	}
	n.revive("x1", relays())
	second := await(t, got)
	n.mu.Lock()
	for _, p := range n.attempts[before:] {
		if p[0].Identity != first[0].Identity {
			t.Errorf("a rebuild after the middle died tried guard %d instead of %d", p[0].Identity[0], first[0].Identity[0])
		}
	}
	n.mu.Unlock()
	if second[0].Name != first[0].Name || second[2].Name != "x1" {
		t.Fatalf("rebuilt %v after %v", names(second), names(first))
	}
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	if !m.Status().Reroutes[0].SameSession {
		t.Fatal("the session was not kept")
	}
	if s := m.Status(); !s.Down.IsZero() {
		t.Fatalf("up, yet down since %v", s.Down)
	}
}

// pinningPicker picks like a directory picker whose user named the exit: the exit is always the
// named one, whatever the manager asks to avoid.
type pinningPicker struct {
	*listPicker
	exit netdir.Relay
}

func (p pinningPicker) Pick(_ *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error) {
	return p.listPicker.Pick(&p.exit, avoid, attempt)
}

// An exit that stays unreachable for longer than SameExitFor and then comes back keeps the session
// whenever the path ends there again: the ticket is presented on every path to the session's exit,
// pinned or not.
func TestSessionKeptWhenTheExitReturnsLate(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		t.Run(map[bool]string{false: "picker-pins", true: "pinned"}[pinned], func(t *testing.T) {
			defer goleak.VerifyNone(t)
			n := newFakeNet()
			lp, err := newListPicker(relays(), "", rand.New(rand.NewPCG(5, 6)))
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan []netdir.Relay, 16)
			m := startWith(t, n, "", func(c *Config) {
				c.Picker, c.ExitPinned, c.SameExitFor = pinningPicker{lp, relays()[5]}, pinned, 50*time.Millisecond
				c.OnCircuit = func(_ Circuit, p []netdir.Relay) { got <- p }
			})
			defer m.Close()
			first := await(t, got)
			n.kill("x1", relays())
			time.Sleep(300 * time.Millisecond) // six times SameExitFor
			n.revive("x1", relays())
			second := await(t, got)
			waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
			if r := m.Status().Reroutes[0]; second[2].Name != "x1" || !r.SameSession {
				t.Fatalf("after %v: rebuilt %v, session kept %v", names(first), names(second), r.SameSession)
			}
		})
	}
}

// flappingPicker is a directory picker whose latest directory took the Guard flag from the client's
// guard: Pick offers another guard every time, PickThrough keeps the one asked for.
type flappingPicker struct {
	*listPicker
	mu      sync.Mutex
	through int
}

func (p *flappingPicker) Pick(exit *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error) {
	path, err := p.listPicker.Pick(exit, avoid, attempt)
	if err == nil {
		p.listPicker.s.guard = "" // the next Pick draws its guard again
	}
	return path, err
}

func (p *flappingPicker) PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	p.mu.Lock()
	p.through++
	p.mu.Unlock()
	p.listPicker.s.guard = guard.Name
	return p.listPicker.Pick(exit, avoid, 0)
}

// After a middle failed, the rebuild keeps the guard the client has just heard from even when the
// directory would now pick another; after the guard's own link died, it does not insist on it.
func TestRebuildKeepsTheGuardItHeardFrom(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	lp, err := newListPicker(relays(), "x1", rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		t.Fatal(err)
	}
	fp := &flappingPicker{listPicker: lp}
	got := make(chan []netdir.Relay, 16)
	m := startWith(t, n, "", func(c *Config) {
		c.Picker, c.ExitPinned = fp, true
		c.OnCircuit = func(_ Circuit, p []netdir.Relay) { got <- p }
	})
	defer m.Close()
	path := await(t, got)
	for range 5 {
		n.kill(path[1].Name, relays())
		next := await(t, got)
		if next[0].Name != path[0].Name {
			t.Fatalf("the middle %s died and the guard changed from %s to %s", path[1].Name, path[0].Name, next[0].Name)
		}
		n.revive(path[1].Name, relays())
		path = next
	}
	n.kill(path[0].Name, relays())
	if next := await(t, got); next[0].Name == path[0].Name {
		t.Fatalf("the guard %s died and was kept", path[0].Name)
	}
}

func TestStartGivesUpWithTheContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	for _, r := range relays() {
		n.kill(r.Name, relays())
	}
	m, _ := New(Config{Builder: n, Picker: mustListPicker(t, relays(), "", rand.New(rand.NewPCG(1, 2))), Backoff: time.Millisecond})
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

// A guard that does not answer CREATE while the client's link to it is up — what an attacker on the wire
// gets by spoiling or dropping CREATE cells during a rebuild, or a busy guard — is not a reason to move
// to another guard: the rebuilds keep trying it until it answers.
func TestGuardSilentOnALiveLinkIsKept(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	m, got := start(t, n, "x1")
	defer m.Close()
	first := await(t, got)
	guard := first[0].Identity[0]
	n.mu.Lock()
	n.mute[guard] = true
	n.mu.Unlock()
	before := n.tried()
	n.kill(first[1].Name, relays())
	waitFor(t, func() bool { return n.tried() >= before+8 })
	n.mu.Lock()
	for _, p := range n.attempts[before:] {
		if p[0].Identity[0] != guard {
			t.Errorf("a guard that did not answer on a live link was left for guard %d", p[0].Identity[0])
		}
	}
	delete(n.mute, guard)
	n.mu.Unlock()
	if second := await(t, got); second[0].Name != first[0].Name {
		t.Fatalf("rebuilt %v after %v", names(second), names(first))
	}
}
