// Package circmgr keeps a client's circuit up: it picks a path from the relays it knows, builds the
// circuit and opens an exit session on it, and when the circuit dies rebuilds one to the same exit
// with the session's ticket, so that the exit keeps the user's address and open connections. Only when
// the exit itself stays unreachable does it move to another exit (a new session), or when the user
// asks for another exit while it runs (Retarget: make before break, a new session).
//
// The manager does not choose relays itself: its Picker does (core/path's selection over a
// netdir.NetDir, in the client daemon), and a GuardKeeper picker keeps the guard across rebuilds.
package circmgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/ticket"
)

// Circuit is what the manager needs of a built circuit (*client.Circuit in production).
type Circuit interface {
	// Begin opens an exit session (prev nil) or re-attaches the one prev names, and returns the
	// ticket to keep and whether the exit kept prev's session (client.Circuit.Begin).
	Begin(ctx context.Context, prev *ticket.Ticket) (ticket.Ticket, bool, error)
	Done() <-chan struct{}
	Err() error
	Close()
}

// Picker chooses the relays of a circuit, guard first. exit, when set, is the exit the path must end
// at (a rebuild that keeps the exit session); avoid lists relays to leave out (the dead circuit's
// middle, and on alternate attempts its guard); attempt counts the tries so far, so that a picker
// without randomness of its own can still vary its answer.
type Picker interface {
	Pick(exit *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error)
}

// GuardKeeper is a Picker that can build a path through a given guard: the client's current one,
// which it has just heard from (a relay's DESTROY came back through it). A rebuild after a middle or
// exit failed asks it first, so that the guard does not change when the directory's flags for it
// flapped meanwhile; an error sends the rebuild to Pick.
type GuardKeeper interface {
	PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error)
}

// Builder builds circuits through a path, guard first (an adapter over *client.Client).
type Builder interface {
	Build(ctx context.Context, path []netdir.Relay) (Circuit, error)
}

// Config configures a Manager. Zero durations take the defaults.
type Config struct {
	Builder Builder
	// Picker chooses paths: a client's is path selection's (core/path), over its directory or relay
	// list.
	Picker Picker
	// OnCircuit is called with each new circuit, after its exit session is open and before the old
	// circuit is closed: the packet engine switches to it there.
	OnCircuit func(c Circuit, path []netdir.Relay)
	// OnPath, if set, is called with a path before the manager builds through it (the client routes
	// the guard outside its tunnel there). An error skips the path.
	OnPath func(path []netdir.Relay) error

	BuildTimeout time.Duration // one build and BEGIN (default 5 s)
	Backoff      time.Duration // first pause after a failed rebuild, doubling to 5 s (default 100 ms)
	// SameExitFor is how long rebuilds keep to the circuit's exit before giving up its session for
	// another exit (default 20 s). It does not apply when the exit is pinned.
	SameExitFor time.Duration
	// ExitPinned says the user chose the exit (a relay list's Exit sets it): rebuilds never move to
	// another one, however long it stays unreachable — its session waits at the exit.
	ExitPinned bool
	// MaxLifetime is how long one circuit carries the user's traffic (Tor's MaxCircuitDirtiness, per
	// circuit): then the manager builds a fresh circuit to the same exit — same guard, another middle
	// when there is one — re-attaches the session to it and switches, before the old circuit is
	// closed (make-before-break), so open connections go on. Default 3 hours; a failed replacement
	// keeps the old circuit and tries again after Backoff doubling to a minute.
	MaxLifetime time.Duration
	// Drain is how long a replaced circuit stays open after the switch, so that what was already on
	// its way back through it still arrives (default 2 s).
	Drain time.Duration

	Logger *zap.Logger
}

// Reroute records one rebuild after a circuit died.
type Reroute struct {
	Died, Rebuilt time.Time
	// Silent, if set, is since when the dead circuit had carried the client's data away with
	// nothing back (its Unanswered) when it died: the outage began there, not at Died.
	Silent      time.Time
	Why         string
	Path        []string // relay names, guard first
	SameSession bool     // the exit kept the session: open connections survived
}

// Replacement records one make-before-break switch to a fresh circuit when the old one reached
// MaxLifetime.
type Replacement struct {
	At          time.Time
	Path        []string
	SameSession bool // the exit re-attached the session (it always should: the old circuit was alive)
}

// Move records one change of exit the user asked for while the client ran (Retarget): a circuit to
// the new exit with a new exit session. Connections made through the old exit are lost.
type Move struct {
	At       time.Time
	Asked    string // what the user asked for, in their words ("country:DE")
	From, To string // the exits' names
	Path     []string
	// Stayed says the circuit's exit already fit what was asked: nothing was built, connections
	// go on.
	Stayed bool
}

// Target is what Retarget moves to: a picker whose paths end at the exits the user now wants.
type Target struct {
	Picker Picker
	// Pinned says the user named the exit: from now on rebuilds wait for it, as with
	// Config.ExitPinned; otherwise they may move to another exit of Picker's choosing.
	Pinned bool
	// Asked is the user's request in words, for Status.
	Asked string
}

// ErrNotStarted is returned by Retarget before Start has built the first circuit.
var ErrNotStarted = errors.New("circmgr: no circuit yet")

// Gap is how long the client had no circuit.
func (r Reroute) Gap() time.Duration { return r.Rebuilt.Sub(r.Died) }

// Outage is how long the client had no working circuit: from when the dead one went silent (or died,
// when it carried traffic back to the end) until the new one was up.
func (r Reroute) Outage() time.Duration {
	if !r.Silent.IsZero() {
		return r.Rebuilt.Sub(r.Silent)
	}
	return r.Gap()
}

// unanswered is a Circuit that knows since when it has carried data away with nothing back
// (*client.Circuit).
type unanswered interface{ Unanswered() time.Time }

// Current returns the circuit in use (nil before the first), for a caller that checks on it (the
// client's status probes a silent one).
func (m *Manager) Current() Circuit {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.circ
}

// Status is a snapshot of the manager.
type Status struct {
	Up       bool
	Path     []netdir.Relay
	Since    time.Time // when the current circuit came up
	Down     time.Time // when the last circuit died, while there is none (zero when Up)
	Builds   uint64    // circuits built and begun
	Failures uint64    // builds that failed
	Reroutes []Reroute
	// Replaced counts circuits replaced at MaxLifetime; Replacements holds the latest of them.
	Replaced     uint64
	Replacements []Replacement
	// Moves are the latest changes of exit the user asked for (Retarget); Pinned says whether
	// rebuilds keep to the circuit's exit for ever.
	Moves  []Move
	Pinned bool
}

// Manager keeps one circuit up.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	circ     Circuit
	path     []netdir.Relay
	since    time.Time
	died     time.Time      // when the circuit died, until its successor is up
	ticket   *ticket.Ticket // the exit session's ticket; nil before the first session
	builds   uint64
	failures uint64
	reroutes []Reroute
	replaced []Replacement
	nReplace uint64
	moves    []Move
	// picker and pinned start as the config's and change with Retarget; only the goroutine that
	// builds (Start, then keepUp) reads them without mu.
	picker Picker
	pinned bool

	retargets chan *retargetReq // to keepUp, which owns every switch of circuit
	running   chan struct{}     // closed once keepUp runs

	// ctx is the manager's life: Close cancels it, and every build and wait of the manager's own
	// ends with it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// maxReroutes bounds the history Status keeps.
const maxReroutes = 64

// New checks cfg; Start builds the first circuit.
func New(cfg Config) (*Manager, error) {
	if cfg.Builder == nil {
		return nil, errors.New("circmgr: no builder")
	}
	if cfg.Picker == nil {
		return nil, errors.New("circmgr: no picker")
	}
	if cfg.BuildTimeout == 0 {
		cfg.BuildTimeout = 5 * time.Second
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.SameExitFor == 0 {
		cfg.SameExitFor = 20 * time.Second
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = 3 * time.Hour
	}
	if cfg.Drain == 0 {
		cfg.Drain = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	m := &Manager{cfg: cfg, picker: cfg.Picker, pinned: cfg.ExitPinned, retargets: make(chan *retargetReq),
		running: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Start builds the first circuit, trying paths until one works or ctx ends, then keeps it up until
// Close.
func (m *Manager) Start(ctx context.Context) error {
	var last error
	var failedExits []netdir.Relay
	for attempt := 0; ; attempt++ {
		path, err := m.picker.Pick(nil, failedExits, attempt)
		if err == nil {
			if _, err = m.try(ctx, path, false); err == nil {
				break
			}
			if attempt%3 == 2 { // three paths to this exit failed: it may be the one that is down
				failedExits = append(failedExits, path[len(path)-1])
			}
		} else {
			failedExits = nil // every exit was tried: try them all again
		}
		last = err
		m.cfg.Logger.Info("first circuit: attempt failed", zap.Int("attempt", attempt), zap.Strings("path", names(path)), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("no circuit: %w (last: %v)", ctx.Err(), last)
		case <-m.ctx.Done():
			return errors.New("circmgr: closed")
		case <-time.After(m.backoff(attempt)):
		}
	}
	m.wg.Add(1)
	go m.keepUp()
	close(m.running)
	return nil
}

// try builds through path and begins a session (re-attaching when reattach is set), and makes the
// circuit the current one. kept reports that the exit re-attached the session.
func (m *Manager) try(ctx context.Context, path []netdir.Relay, reattach bool) (kept bool, err error) {
	return m.tryTo(ctx, path, reattach, false)
}

// tryTo is try; with drain, the circuit it replaces stays open for Drain after the switch.
func (m *Manager) tryTo(ctx context.Context, path []netdir.Relay, reattach, drain bool) (kept bool, err error) {
	if m.cfg.OnPath != nil {
		if err := m.cfg.OnPath(path); err != nil {
			return false, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.BuildTimeout)
	defer cancel()
	c, err := m.cfg.Builder.Build(ctx, path)
	if err == nil {
		var prev *ticket.Ticket
		if reattach {
			m.mu.Lock()
			prev = m.ticket
			m.mu.Unlock()
		}
		var got ticket.Ticket
		if got, kept, err = c.Begin(ctx, prev); err != nil {
			c.Close()
		} else {
			m.install(c, path, got, drain)
			return kept, nil
		}
	}
	m.mu.Lock()
	m.failures++
	m.mu.Unlock()
	m.cfg.Logger.Info("circuit build failed", zap.Strings("path", names(path)), zap.Error(err))
	return false, err
}

func (m *Manager) install(c Circuit, path []netdir.Relay, tk ticket.Ticket, drain bool) {
	if m.cfg.OnCircuit != nil {
		m.cfg.OnCircuit(c, path)
	}
	m.mu.Lock()
	old := m.circ
	m.circ, m.path, m.ticket, m.since, m.died = c, path, &tk, time.Now(), time.Time{}
	m.builds++
	m.mu.Unlock()
	switch {
	case old == nil:
	case drain:
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			select {
			case <-time.After(m.cfg.Drain):
			case <-m.ctx.Done():
			case <-old.Done():
			}
			old.Close()
		}()
	default:
		old.Close()
	}
	m.cfg.Logger.Info("circuit up", zap.Strings("path", names(path)))
}

// keepUp waits for the circuit to die and rebuilds it, and replaces it when it is MaxLifetime old.
func (m *Manager) keepUp() {
	defer m.wg.Done()
	retry := 0 // failed replacements of the current circuit in a row
	for {
		m.mu.Lock()
		c, path, since := m.circ, m.path, m.since
		m.mu.Unlock()
		due := time.Until(since.Add(m.cfg.MaxLifetime))
		if retry > 0 {
			due = min(m.cfg.Backoff<<min(retry, 10), time.Minute)
		}
		timer := time.NewTimer(max(due, 0))
		select {
		case <-m.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
			if m.replace(c, path) {
				retry = 0
			} else {
				retry++
			}
			continue
		case req := <-m.retargets:
			timer.Stop()
			mv, err := m.retarget(req)
			req.done <- retargetResult{mv, err}
			if err == nil && !mv.Stayed {
				retry = 0
			}
			continue
		case <-c.Done():
			timer.Stop()
			retry = 0
		}
		died := time.Now()
		m.mu.Lock()
		m.died = died
		m.mu.Unlock()
		why := "closed"
		err := c.Err()
		if err != nil {
			why = err.Error()
		}
		m.cfg.Logger.Warn("circuit died, rebuilding", zap.String("why", why))
		r, ok := m.rebuild(path, died, !relayDestroyed(err))
		if !ok {
			return // closed
		}
		r.Why = why
		if u, ok := c.(unanswered); ok {
			if since := u.Unanswered(); !since.IsZero() && since.Before(died) {
				r.Silent = since
			}
		}
		m.mu.Lock()
		if len(m.reroutes) == maxReroutes {
			m.reroutes = append(m.reroutes[:0], m.reroutes[1:]...)
		}
		m.reroutes = append(m.reroutes, r)
		m.mu.Unlock()
	}
}

// replace builds a fresh circuit to the exit of c, which is alive and MaxLifetime old, re-attaches the
// session and switches to it, closing c after Drain. It keeps the guard and, when the picker can,
// takes another middle, so that the old and new circuits share no more than a guard would. It reports
// whether the switch happened; on failure c stays.
func (m *Manager) replace(c Circuit, old []netdir.Relay) bool {
	select {
	case <-c.Done():
		return true // died meanwhile: the rebuild takes over
	default:
	}
	guard, exit := old[0], old[len(old)-1]
	avoid := old[1 : len(old)-1]
	var path []netdir.Relay
	var err error
	if gk, ok := m.picker.(GuardKeeper); ok {
		path, err = gk.PickThrough(guard, &exit, avoid)
	}
	if path == nil {
		path, err = m.picker.Pick(&exit, avoid, 0)
	}
	if err != nil {
		path, err = m.picker.Pick(&exit, nil, 0) // too few relays for another middle
	}
	if err != nil {
		m.cfg.Logger.Info("circuit replacement: no path", zap.Error(err))
		return false
	}
	kept, err := m.tryTo(m.ctx, path, true, true)
	if err != nil {
		return false
	}
	if !kept {
		m.cfg.Logger.Warn("the exit did not keep the session when the circuit was replaced: open connections are lost")
	}
	m.mu.Lock()
	if len(m.replaced) == maxReroutes {
		m.replaced = append(m.replaced[:0], m.replaced[1:]...)
	}
	m.replaced = append(m.replaced, Replacement{At: m.since, Path: names(path), SameSession: kept})
	m.nReplace++
	m.mu.Unlock()
	return true
}

// retargetTries is how many paths to the new exit Retarget builds before it gives up.
const retargetTries = 3

type retargetReq struct {
	ctx  context.Context
	to   Target
	done chan retargetResult // buffered: keepUp never waits for the caller
}

type retargetResult struct {
	mv  Move
	err error
}

// Retarget moves the client to an exit of to.Picker's choosing while it runs (the user's set-exit):
// it builds a circuit to the new exit, opens a new exit session on it and switches to it, then closes
// the old circuit — make before break, as a replacement at MaxLifetime, but with a new session:
// connections through the old exit are lost. It prefers an exit other than the current one; when the
// current one is the only exit that fits and its circuit is up, nothing is built (Move.Stayed). From
// then on rebuilds and replacements pick with to.Picker and keep to.Pinned.
//
// When no circuit to the new exit can be built (retargetTries paths, or until ctx ends), the old
// circuit and choice stay as they were and the error says why.
func (m *Manager) Retarget(ctx context.Context, to Target) (Move, error) {
	if to.Picker == nil {
		return Move{}, errors.New("circmgr: retarget: no picker")
	}
	select {
	case <-m.running:
	default:
		return Move{}, ErrNotStarted
	}
	req := &retargetReq{ctx: ctx, to: to, done: make(chan retargetResult, 1)}
	select {
	case m.retargets <- req:
	case <-ctx.Done():
		return Move{}, fmt.Errorf("circmgr: retarget: %w", ctx.Err())
	case <-m.ctx.Done():
		return Move{}, errors.New("circmgr: closed")
	}
	// keepUp has the request and answers it however the build goes; the build watches ctx.
	r := <-req.done
	return r.mv, r.err
}

// retarget carries out a Retarget request, on keepUp's goroutine.
func (m *Manager) retarget(req *retargetReq) (Move, error) {
	m.mu.Lock()
	cur, circ := m.path, m.circ
	m.mu.Unlock()
	curExit := cur[len(cur)-1]
	alive := true
	select {
	case <-circ.Done():
		alive = false
	default:
	}
	// The build ends with the caller's context or the manager's, whichever ends first.
	ctx, cancel := context.WithCancel(req.ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	var last error
	for attempt := range retargetTries {
		path, err := req.to.Picker.Pick(nil, []netdir.Relay{curExit}, attempt)
		if err != nil { // the current exit may be the only one that fits
			path, err = req.to.Picker.Pick(nil, nil, attempt)
		}
		if err != nil {
			last = err
			break // no exit fits: another try picks none either
		}
		exit := path[len(path)-1]
		same := exit.Identity == curExit.Identity
		mv := Move{Asked: req.to.Asked, From: curExit.Name, To: exit.Name}
		if same && alive {
			mv.At, mv.Path, mv.Stayed = time.Now(), names(cur), true
			m.adopt(req.to, mv)
			m.cfg.Logger.Info("exit choice changed; the circuit's exit fits it and stays", zap.String("asked", req.to.Asked))
			return mv, nil
		}
		// A dead circuit's exit still holds the session: a path back to it re-attaches.
		if _, err = m.tryTo(ctx, path, same, false); err == nil {
			m.mu.Lock()
			mv.At = m.since
			m.mu.Unlock()
			mv.Path = names(path)
			m.adopt(req.to, mv)
			m.cfg.Logger.Warn("moved to another exit as asked: open connections through the old one are lost",
				zap.String("asked", req.to.Asked), zap.String("from", mv.From), zap.String("to", mv.To))
			return mv, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if !alive {
		return Move{}, fmt.Errorf("no circuit to a new exit (%s); the client goes on rebuilding to %s: %w", req.to.Asked, curExit.Name, last)
	}
	return Move{}, fmt.Errorf("no circuit to a new exit (%s); the circuit through %s stays: %w", req.to.Asked, curExit.Name, last)
}

// adopt makes to the manager's choice of exit and records mv.
func (m *Manager) adopt(to Target, mv Move) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.picker, m.pinned = to.Picker, to.Pinned
	if len(m.moves) == maxReroutes {
		m.moves = append(m.moves[:0], m.moves[1:]...)
	}
	m.moves = append(m.moves, mv)
}

// relayDestroyed reports whether a circuit ended because a relay tore it down (a DESTROY came back
// through the guard): the guard was alive to pass it on, and what failed lies beyond it.
func relayDestroyed(err error) bool {
	var ce *cell.Error
	return errors.As(err, &ce) && ce.Remote
}

// hopFailure is a build error that names the hop that failed (*client.HopError).
type hopFailure interface{ FailedHop() int }

// guardLinkUp reports whether a build that failed at the guard failed with the client's link to the
// guard still up (*client.HopError.LinkUp): the guard's CREATED did not come, but the guard is there.
// That is what an attacker on the wire gets by spoiling or dropping CREATE cells, and what a busy guard
// does; neither is a reason to move to another guard, which is what such an attacker would want.
func guardLinkUp(err error) bool {
	var lu interface{ GuardLinkUp() bool }
	return errors.As(err, &lu) && lu.GuardLinkUp()
}

// rebuild tries paths to the dead circuit's exit, presenting its session ticket, for SameExitFor
// (for ever when the exit is pinned); then other exits too, with a new session. Every attempt avoids
// the dead middle. The guard is kept — a client that changed guards whenever a middle failed would
// meet many guards, which the guard rules exist to prevent — unless it is suspect: the circuit died
// without a relay telling (the client's own link to the guard went down), or a build failed at the
// guard. A suspect guard is avoided at once and tried again every fourth attempt, should it come
// back. Whenever a path ends at the session's exit, the ticket is presented: the exit keeps the session
// however many attempts it took.
func (m *Manager) rebuild(dead []netdir.Relay, died time.Time, guardSuspect bool) (Reroute, bool) {
	guard, middle, exit := dead[0], dead[1], dead[len(dead)-1]
	sameExit := true
	for attempt := 0; ; attempt++ {
		if sameExit && !m.pinned && time.Since(died) > m.cfg.SameExitFor {
			sameExit = false
			m.cfg.Logger.Warn("the exit is unreachable: moving to another exit, open connections are lost",
				zap.Duration("tried_for", m.cfg.SameExitFor))
		}
		avoid := []netdir.Relay{middle}
		if guardSuspect && attempt%4 != 3 {
			avoid = append(avoid, guard)
		}
		want := &exit
		if !sameExit {
			want, avoid = nil, append(avoid, exit)
		}
		var path []netdir.Relay
		var err error
		if gk, ok := m.picker.(GuardKeeper); ok && !guardSuspect {
			path, err = gk.PickThrough(guard, want, avoid)
		}
		if path == nil {
			path, err = m.picker.Pick(want, avoid, attempt)
		}
		if err != nil && len(avoid) > 1 {
			path, err = m.picker.Pick(want, avoid[:1], attempt) // too few relays to avoid both
		}
		if err == nil {
			var kept bool
			kept, err = m.try(m.ctx, path, path[len(path)-1].Identity == exit.Identity)
			if err == nil {
				m.mu.Lock()
				now := m.since
				m.mu.Unlock()
				return Reroute{Died: died, Rebuilt: now, Path: names(path), SameSession: kept}, true
			}
			var hf hopFailure
			if errors.As(err, &hf) && path[0].Identity == guard.Identity {
				guardSuspect = hf.FailedHop() == 1 && !guardLinkUp(err)
			}
		}
		select {
		case <-m.ctx.Done():
			return Reroute{}, false
		case req := <-m.retargets:
			// The user wants another exit while this one is unreachable: a circuit to it ends
			// the rebuild.
			mv, err := m.retarget(req)
			req.done <- retargetResult{mv, err}
			if err == nil && !mv.Stayed {
				m.mu.Lock()
				now := m.since
				m.mu.Unlock()
				return Reroute{Died: died, Rebuilt: now, Path: mv.Path}, true
			}
			if err == nil { // the dead circuit's exit is the one asked for: rebuild to it as before
				sameExit = true
			}
		case <-time.After(m.backoff(attempt)):
		}
	}
}

func (m *Manager) backoff(attempt int) time.Duration {
	d := m.cfg.Backoff << min(attempt, 6)
	return min(d, 5*time.Second)
}

// Status returns a snapshot.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Path: append([]netdir.Relay(nil), m.path...), Since: m.since, Builds: m.builds, Failures: m.failures,
		Reroutes: append([]Reroute(nil), m.reroutes...), Replaced: m.nReplace,
		Replacements: append([]Replacement(nil), m.replaced...), Moves: append([]Move(nil), m.moves...), Pinned: m.pinned}
	if m.circ != nil {
		select {
		case <-m.circ.Done():
			s.Down = m.died
			if s.Down.IsZero() { // dead, and keepUp has not seen it yet
				s.Down = time.Now()
			}
		default:
			s.Up = true
		}
	}
	return s
}

// Close stops the manager and tears its circuit down.
func (m *Manager) Close() {
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		m.mu.Lock()
		c := m.circ
		m.mu.Unlock()
		if c != nil {
			c.Close()
		}
	})
}

func names(path []netdir.Relay) []string {
	out := make([]string, len(path))
	for i, r := range path {
		out[i] = r.Name
	}
	return out
}
