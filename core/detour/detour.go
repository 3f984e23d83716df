// Package detour sends a flow that the exit refuses over a second circuit, to an exit that allows it.
//
// An exit answers a packet its policy refuses with an ICMP "administratively prohibited", which the
// client's kernel turns into a failed connection at once. With detours, the client's packet engine
// shows each refusal to Detours first (engine.SetRefusalHook): for a TCP or UDP destination port not
// seen before, Detours holds the refusal back and opens a side circuit to an exit that allows the
// port, and routes the port's packets through it (engine.SetDetours). The program's next try (a TCP
// SYN is sent again after a second; a UDP program asks again) then goes through the side circuit, and
// the connection works without the program ever seeing the refusal. A port no exit allows is refused
// as before, after that one try. A side circuit carries every refused port its exit allows, so a few
// side circuits serve all of them; their number is bounded, as is the number of ports kept.
//
// Tor does the same by nature, choosing a circuit for each stream by the exit policies; here it is
// done by destination port, since the client sees IP packets, not streams.
package detour

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/engine"
)

// Side is a second circuit: it keeps a circuit up to an exit that allows the flow it was opened for,
// and hands every circuit it builds to the set function it was opened with.
type Side interface {
	// Allows reports whether the side's exit allows f (by its published policy).
	Allows(f engine.Flow) bool
	// Close tears the side's circuit down.
	Close()
}

// Opener opens a side circuit for f: to an exit that allows f and is not the exit that refused it.
// It returns once the first circuit is up (set has been called with it) or fails; ctx ends with
// Detours.Close. An error means no exit could take f.
type Opener func(ctx context.Context, f engine.Flow, set func(engine.Route)) (Side, error)

// Router is where the detours go (*engine.Engine).
type Router interface {
	SetDetours(map[engine.Flow]engine.Route)
}

// Config configures Detours. Zero values take the defaults.
type Config struct {
	Router Router
	Open   Opener
	// PortRefused, if set, reports whether the main circuit's exit refuses f's port as such (by its
	// published policy). A refusal of a port it allows was about the destination (a private network,
	// an address its policy names) and says nothing of other exits: it reaches the program, and the
	// port stays on the main circuit.
	PortRefused func(f engine.Flow) bool
	// MaxSides bounds the side circuits (default 4): a flow that no side's exit allows once there are
	// as many is refused.
	MaxSides int
	// MaxFlows bounds the flows kept (default 256): refusals of further flows are let through.
	MaxFlows int
	// RetryAfter is how long a flow that no exit took is refused before it is tried again (default
	// 5 min: the directory may have changed).
	RetryAfter time.Duration
	Logger     *zap.Logger
}

// Detours keeps the side circuits of the flows the exit refused.
type Detours struct {
	cfg    Config
	queue  chan engine.Flow
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	flows  map[engine.Flow]*state
	sides  []*side
}

// state is what became of one refused flow.
type state struct {
	pending bool      // a side is being found or opened for it: its refusals are held back
	side    *side     // the side it goes through
	failed  time.Time // when no exit took it (zero: not failed)
}

type side struct {
	s     Side
	route engine.Route // the side's circuit in use; zero before the first
	flows []engine.Flow
}

// New starts Detours. Its Refused is the engine's refusal hook.
func New(cfg Config) (*Detours, error) {
	if cfg.Router == nil || cfg.Open == nil {
		return nil, errors.New("detour: a router and an opener are needed")
	}
	if cfg.MaxSides <= 0 {
		cfg.MaxSides = 4
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 256
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	d := &Detours{cfg: cfg, queue: make(chan engine.Flow, 16), flows: make(map[engine.Flow]*state)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Go(d.work)
	return d, nil
}

// Refused is the engine's refusal hook: it reports whether to hold back a refusal of f, which it does
// while a side circuit is found for f. Only TCP and UDP flows, which an exit policy names by port,
// are detoured; a refusal that came through f's own side circuit is let through.
func (d *Detours) Refused(f engine.Flow) bool {
	if f.Proto != 6 && f.Proto != 17 || f.Port == 0 {
		return false
	}
	d.mu.Lock()
	known := d.flows[f] != nil
	d.mu.Unlock()
	if !known && d.cfg.PortRefused != nil && !d.cfg.PortRefused(f) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	st := d.flows[f]
	switch {
	case st == nil && len(d.flows) >= d.cfg.MaxFlows:
		return false
	case st == nil:
		st = &state{}
		d.flows[f] = st
	case st.pending:
		return true
	case st.side != nil:
		return false
	case time.Since(st.failed) < d.cfg.RetryAfter:
		return false
	}
	select {
	case d.queue <- f:
		st.pending, st.failed = true, time.Time{}
		return true
	default: // the worker is busy with as many: this refusal goes through, a later one is tried
		if st.failed.IsZero() {
			delete(d.flows, f)
		}
		return false
	}
}

// work finds or opens a side for each flow queued.
func (d *Detours) work() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case f := <-d.queue:
			d.place(f)
		}
	}
}

// place gives f a side: one already open whose exit allows it, or a new one.
func (d *Detours) place(f engine.Flow) {
	d.mu.Lock()
	for _, sd := range d.sides {
		if sd.s.Allows(f) {
			d.attach(f, sd)
			d.mu.Unlock()
			return
		}
	}
	full := len(d.sides) >= d.cfg.MaxSides
	d.mu.Unlock()
	if full {
		d.fail(f, errors.New("as many side circuits as allowed are open, and none of their exits allows the flow"))
		return
	}
	sd := &side{}
	s, err := d.cfg.Open(d.ctx, f, func(r engine.Route) {
		d.mu.Lock()
		defer d.mu.Unlock()
		sd.route = r
		d.publish()
	})
	if err != nil {
		d.fail(f, err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.flows[f] == nil { // closed, or Reset while it opened: nothing is to go through it
		s.Close()
		return
	}
	sd.s = s
	d.sides = append(d.sides, sd)
	d.attach(f, sd)
	d.cfg.Logger.Info("a refused flow goes through a second circuit", zap.Int("side_circuits", len(d.sides)))
}

// attach routes f through sd. d.mu is held.
func (d *Detours) attach(f engine.Flow, sd *side) {
	st := d.flows[f]
	if st == nil {
		return // Reset forgot it meanwhile
	}
	st.pending, st.side = false, sd
	sd.flows = append(sd.flows, f)
	d.publish()
}

// fail marks f as taken by no exit, for RetryAfter.
func (d *Detours) fail(f engine.Flow, err error) {
	d.cfg.Logger.Info("no second circuit for a refused flow; it stays refused", zap.Error(err))
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.flows[f]; st != nil {
		st.pending, st.failed = false, time.Now()
	}
}

// publish hands the router every flow's side circuit. d.mu is held.
func (d *Detours) publish() {
	routes := make(map[engine.Flow]engine.Route)
	for _, sd := range d.sides {
		if sd.route.C == nil {
			continue
		}
		for _, f := range sd.flows {
			routes[f] = sd.route
		}
	}
	d.cfg.Router.SetDetours(routes)
}

// View is one side circuit as status shows it.
type View struct {
	Side  Side
	Flows []engine.Flow
	Up    bool // it has had a circuit
}

// Status returns the side circuits and the flows no exit took (refused until RetryAfter passes).
func (d *Detours) Status() (sides []View, failed []engine.Flow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sd := range d.sides {
		sides = append(sides, View{Side: sd.s, Flows: append([]engine.Flow(nil), sd.flows...), Up: sd.route.C != nil})
	}
	for f, st := range d.flows {
		if !st.failed.IsZero() {
			failed = append(failed, f)
		}
	}
	return sides, failed
}

// Reset closes every side circuit and forgets every flow: the main circuit's exit changed, and may
// allow what the old one refused.
func (d *Detours) Reset() {
	d.mu.Lock()
	sides := d.sides
	d.sides, d.flows = nil, make(map[engine.Flow]*state)
	d.cfg.Router.SetDetours(nil)
	d.mu.Unlock()
	for _, sd := range sides {
		sd.s.Close()
	}
}

// Close stops Detours and closes its side circuits; refusals then all go through.
func (d *Detours) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	d.Reset()
}
