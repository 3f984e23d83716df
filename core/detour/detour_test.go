package detour

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/engine"
)

// fakeCircuit is a circuit that goes nowhere; routes are compared by it.
type fakeCircuit struct{ name string }

func (fakeCircuit) Send([]byte) error                 { return nil }
func (fakeCircuit) SendBatch(d [][]byte) (int, error) { return len(d), nil }
func (fakeCircuit) MaxData() int                      { return 1500 }
func (fakeCircuit) Done() <-chan struct{}             { return nil }

// router records the detours it was given.
type router struct {
	mu   sync.Mutex
	last map[engine.Flow]engine.Route
}

func (r *router) SetDetours(m map[engine.Flow]engine.Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = m
}

func (r *router) route(f engine.Flow) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.last[f].C.(*fakeCircuit); ok {
		return c.name
	}
	return ""
}

// exits is a network of exits by the ports they allow; Open picks the first that allows the flow.
type exits struct {
	mu     sync.Mutex
	allow  map[string][]uint16 // exit name → TCP ports it allows
	order  []string
	opened []string
	closed []string
	block  chan struct{} // if set, Open waits for it
}

type fakeSide struct {
	x    *exits
	name string
}

func (s *fakeSide) Allows(f engine.Flow) bool {
	s.x.mu.Lock()
	defer s.x.mu.Unlock()
	for _, p := range s.x.allow[s.name] {
		if f.Proto == 6 && f.Port == p {
			return true
		}
	}
	return false
}

func (s *fakeSide) Close() {
	s.x.mu.Lock()
	defer s.x.mu.Unlock()
	s.x.closed = append(s.x.closed, s.name)
}

func (x *exits) open(ctx context.Context, f engine.Flow, set func(engine.Route)) (Side, error) {
	if x.block != nil {
		select {
		case <-x.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	x.mu.Lock()
	for _, name := range x.order {
		for _, p := range x.allow[name] {
			if f.Proto == 6 && f.Port == p {
				x.opened = append(x.opened, name)
				x.mu.Unlock()
				set(engine.Route{C: &fakeCircuit{name}})
				return &fakeSide{x, name}, nil
			}
		}
	}
	x.mu.Unlock()
	return nil, errors.New("no exit allows it")
}

func newDetours(t *testing.T, x *exits, tweak func(*Config)) (*Detours, *router) {
	t.Helper()
	r := &router{}
	cfg := Config{Router: r, Open: x.open}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, r
}

func tcp(port uint16) engine.Flow { return engine.Flow{Proto: 6, Port: port} }

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A refused port is held back while a side circuit opens to an exit that allows it, then routed
// through it; a refusal through the side itself goes through to the program.
func TestRefusedFlowGetsASideCircuit(t *testing.T) {
	x := &exits{allow: map[string][]uint16{"x2": {8080, 8081}, "x3": {9000}}, order: []string{"x2", "x3"}}
	d, r := newDetours(t, x, nil)
	if !d.Refused(tcp(8080)) {
		t.Fatal("the first refusal of a port went through: the program fails before its detour exists")
	}
	eventually(t, "tcp/8080 routed through x2", func() bool { return r.route(tcp(8080)) == "x2" })
	if d.Refused(tcp(8080)) {
		t.Fatal("a refusal through the detour itself was held back: the program would wait for nothing")
	}
	// Another port x2 allows takes the same side; one it does not gets a side of its own.
	d.Refused(tcp(8081))
	d.Refused(tcp(9000))
	eventually(t, "tcp/8081 through x2 and tcp/9000 through x3", func() bool {
		return r.route(tcp(8081)) == "x2" && r.route(tcp(9000)) == "x3"
	})
	x.mu.Lock()
	opened := len(x.opened)
	x.mu.Unlock()
	if opened != 2 {
		t.Fatalf("opened %v: a side whose exit allows the port should be reused", x.opened)
	}
	sides, failed := d.Status()
	if len(sides) != 2 || len(failed) != 0 || len(sides[0].Flows) != 2 || !sides[0].Up {
		t.Fatalf("status: %+v failed %v", sides, failed)
	}
}

// A port no exit allows is refused after the one try: its refusals go through until RetryAfter.
func TestFlowNoExitAllowsIsRefused(t *testing.T) {
	x := &exits{allow: map[string][]uint16{"x2": {80}}, order: []string{"x2"}}
	d, r := newDetours(t, x, nil)
	if !d.Refused(tcp(25)) {
		t.Fatal("the first refusal went through before an exit was looked for")
	}
	eventually(t, "tcp/25 failed", func() bool { _, f := d.Status(); return len(f) == 1 })
	if d.Refused(tcp(25)) {
		t.Fatal("a port no exit allows is still held back: the program would never be told")
	}
	if r.route(tcp(25)) != "" {
		t.Fatal("a failed port has a route")
	}
	// Not ICMP nor a port-less flow: those are never held.
	if d.Refused(engine.Flow{Proto: 1}) || d.Refused(engine.Flow{Proto: 6}) {
		t.Fatal("a flow without a port was held")
	}
}

// A refusal of a port the main exit allows was about its destination: it goes through, and the port
// keeps the main circuit.
func TestRefusalOfAnAllowedPortIsLeftAlone(t *testing.T) {
	x := &exits{allow: map[string][]uint16{"x2": {80}}, order: []string{"x2"}}
	d, r := newDetours(t, x, func(c *Config) {
		c.PortRefused = func(f engine.Flow) bool { return f.Port != 80 }
	})
	if d.Refused(tcp(80)) {
		t.Fatal("a refusal of a port the exit allows (a private address, say) was held back")
	}
	time.Sleep(10 * time.Millisecond)
	if sides, _ := d.Status(); len(sides) != 0 || r.route(tcp(80)) != "" || len(x.opened) != 0 {
		t.Fatalf("tcp/80 moved to a side circuit: %+v", sides)
	}
}

// The side circuits and the flows kept are bounded: past them, refusals go through.
func TestSidesAndFlowsAreBounded(t *testing.T) {
	allow := map[string][]uint16{}
	var order []string
	for i := range 10 {
		name := string(rune('a' + i))
		allow[name], order = []uint16{uint16(1000 + i)}, append(order, name)
	}
	x := &exits{allow: allow, order: order}
	d, r := newDetours(t, x, func(c *Config) { c.MaxSides, c.MaxFlows = 2, 5 })
	for i := range 10 {
		d.Refused(tcp(uint16(1000 + i)))
		if i < 3 {
			eventually(t, "placed", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return !d.flows[tcp(uint16(1000+i))].pending
			})
		}
	}
	eventually(t, "the queue drained", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, st := range d.flows {
			if st.pending {
				return false
			}
		}
		return true
	})
	sides, _ := d.Status()
	if len(sides) != 2 || r.route(tcp(1002)) != "" {
		t.Fatalf("%d sides (want 2), tcp/1002 through %q", len(sides), r.route(tcp(1002)))
	}
	d.mu.Lock()
	n := len(d.flows)
	d.mu.Unlock()
	if n > 5 {
		t.Fatalf("%d flows kept, want at most 5", n)
	}
}

// Reset (the main exit changed) and Close tear the sides down and route nothing any more; a side that
// finishes opening after Close is closed at once.
func TestResetAndCloseTearSidesDown(t *testing.T) {
	x := &exits{allow: map[string][]uint16{"x2": {8080}, "x3": {9000}}, order: []string{"x2", "x3"}}
	d, r := newDetours(t, x, nil)
	d.Refused(tcp(8080))
	eventually(t, "routed", func() bool { return r.route(tcp(8080)) == "x2" })
	d.Reset()
	if r.route(tcp(8080)) != "" || len(x.closed) != 1 {
		t.Fatalf("after Reset: route %q, closed %v", r.route(tcp(8080)), x.closed)
	}
	if !d.Refused(tcp(8080)) {
		t.Fatal("after Reset the port is not looked at again")
	}
	eventually(t, "routed again", func() bool { return r.route(tcp(8080)) == "x2" })

	x.block = make(chan struct{})
	d.Refused(tcp(9000))
	d.Close()
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.closed) != 2 || r.route(tcp(8080)) != "" || d.Refused(tcp(8080)) {
		t.Fatalf("after Close: closed %v, route %q", x.closed, r.route(tcp(8080)))
	}
}
