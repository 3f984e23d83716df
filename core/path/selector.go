package path

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Config is what a Selector is built from.
type Config struct {
	// Dir is the network's relays: the directory's, or a relay list's.
	Dir *netdir.NetDir
	// Guards is the client's guard set; Pick keeps it up to date, and the caller saves it.
	Guards *GuardSet
	// Rand drives every draw. Default: ChaCha8 seeded from crypto/rand. Paths must not be predictable
	// to anyone watching, so outside tests pass nothing or a generator seeded as the default is.
	Rand *rand.Rand
	// Now is the clock guard lifetimes are measured on. Default: time.Now.
	Now func() time.Time
	// AllowSameSubnet lifts the rule that no two hops share a /16 (/32): for test networks whose
	// relays all live in one subnet, never for a real one.
	AllowSameSubnet bool
}

// Selector picks paths through one NetDir. It is safe for concurrent use; a new NetDir takes a new
// Selector, sharing the GuardSet.
type Selector struct {
	guards          *GuardSet
	now             func() time.Time
	allowSameSubnet bool

	nodes  []*node
	byID   map[keys.IdentityPublic]*node
	byName map[string][]*node

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// New checks cfg, reporting every problem at once, and returns a Selector over its relays. (The NetDir
// has checked them: one identity each, each with an address.)
func New(cfg Config) (*Selector, error) {
	var errs []error
	if cfg.Guards == nil {
		errs = append(errs, errors.New("no guard set"))
	}
	if cfg.Dir == nil {
		errs = append(errs, errors.New("no directory"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("path: %w", errors.Join(errs...))
	}
	s := &Selector{
		guards:          cfg.Guards,
		now:             cfg.Now,
		allowSameSubnet: cfg.AllowSameSubnet,
		byID:            make(map[keys.IdentityPublic]*node, cfg.Dir.Len()),
		byName:          make(map[string][]*node),
		rng:             cfg.Rand,
	}
	var lowest uint64 // the lowest measured weight
	for _, r := range cfg.Dir.Relays() {
		n := newNode(r)
		s.nodes = append(s.nodes, n)
		s.byID[r.Identity] = n
		if r.Name != "" {
			s.byName[r.Name] = append(s.byName[r.Name], n)
		}
		if n.weight > 0 && (lowest == 0 || n.weight < lowest) {
			lowest = n.weight
		}
	}
	for _, n := range s.nodes {
		if n.weight == 0 {
			n.weight = max(lowest, 1)
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rng == nil {
		var seed [32]byte
		crand.Read(seed[:]) // never fails (crypto/rand crashes the program rather)
		s.rng = rand.New(rand.NewChaCha8(seed))
	}
	return s, nil
}

// Pick returns a path for the choice, guard first, exit last, avoiding the relays given. It may
// update the guard set (expired guards replaced, new ones sampled): save it when it Changed.
func (s *Selector) Pick(choice ExitChoice, avoid ...keys.IdentityPublic) ([]netdir.Relay, error) {
	if err := choice.check(); err != nil {
		return nil, err
	}
	avoided := make(map[keys.IdentityPublic]bool, len(avoid))
	for _, id := range avoid {
		avoided[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exits, err := s.exits(choice, avoided)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.guards.mu.Lock()
	defer s.guards.mu.Unlock()
	s.guards.expire(now)
	for len(s.guards.guards) < GuardTarget {
		if !s.sampleGuard(now, avoided) {
			break
		}
	}
	for {
		p, err := s.pickAround(exits, choice.Mode == Random, avoided)
		if err == nil {
			return []netdir.Relay{p[0].Relay, p[1].Relay, p[2].Relay}, nil
		}
		// Grow the set only when its guards are the obstacle, and only so far.
		if !errors.Is(err, ErrNoGuard) {
			return nil, err
		}
		if len(s.guards.guards) >= GuardMax {
			return nil, fmt.Errorf("%w; the guard set is full (%d guards)", err, GuardMax)
		}
		if !s.sampleGuard(now, avoided) {
			return nil, fmt.Errorf("%w; no other Guard-flagged relay can join the guard set", err)
		}
	}
}

// PickThrough returns a path for the choice that starts at guard, the client's current guard, which it
// has just heard from (a relay's DESTROY came back through it): that first-hand evidence outweighs the
// directory's flags, so the guard serves as long as it is in the consensus at all, whatever its flags
// say now (Guard and Degraded flap with the authorities' measurements). The guard set is not touched.
// An error (the guard gone from the consensus, or no middle and exit around it) tells the caller to
// Pick as usual.
func (s *Selector) PickThrough(guard keys.IdentityPublic, choice ExitChoice, avoid ...keys.IdentityPublic) ([]netdir.Relay, error) {
	if err := choice.check(); err != nil {
		return nil, err
	}
	avoided := make(map[keys.IdentityPublic]bool, len(avoid))
	for _, id := range avoid {
		avoided[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.byID[guard]
	if g == nil || avoided[guard] {
		return nil, fail(ErrNoGuard, "the guard %s is not in the consensus or is avoided", guard)
	}
	exits, err := s.exits(choice, avoided)
	if err != nil {
		return nil, err
	}
	var lastErr error = fail(ErrNoExit, "no exit fits beside the guard %s", g)
	for len(exits) > 0 {
		i := s.draw(exits, choice.Mode == Random)
		exit := exits[i]
		exits[i] = exits[len(exits)-1]
		exits = exits[:len(exits)-1]
		if c := s.conflict(g, exit); c != "" {
			continue
		}
		middle, err := s.pickMiddle(g, exit, avoided)
		if err != nil {
			lastErr = err
			continue
		}
		return []netdir.Relay{g.Relay, middle.Relay, exit.Relay}, nil
	}
	return nil, lastErr
}

// pickAround draws exits from the candidates until one has a guard and a middle around it. An exit
// that has none is set aside for this Pick, so the exit drawn follows the weights among those that
// can be built around.
func (s *Selector) pickAround(exits []*node, uniform bool,
	avoid map[keys.IdentityPublic]bool) ([3]*node, error) {
	exits = append([]*node(nil), exits...)
	tried := len(exits)
	var middleErr, guardErr error
	for len(exits) > 0 {
		i := s.draw(exits, uniform)
		exit := exits[i]
		exits[i] = exits[len(exits)-1]
		exits = exits[:len(exits)-1]
		guard, err := s.pickGuard(exit, avoid)
		if err != nil {
			guardErr = err
			continue
		}
		middle, err := s.pickMiddle(guard, exit, avoid)
		if err != nil {
			middleErr = err
			continue
		}
		return [3]*node{guard, middle, exit}, nil
	}
	err := guardErr
	if middleErr != nil { // a guard was found for some exit: the middle is what is missing
		err = middleErr
	}
	if tried > 1 {
		err = fmt.Errorf("%w (nor around any other of the %d exits that fit)", err, tried)
	}
	return [3]*node{}, err
}

// pickGuard returns the first guard of the set that can serve with the exit, or an error that says
// why each guard cannot.
func (s *Selector) pickGuard(exit *node, avoid map[keys.IdentityPublic]bool) (*node, error) {
	var why []string
	subnet := false // some guard is kept out only by the exit's /16
	for _, e := range s.guards.guards {
		n := s.byID[e.Identity]
		reason := ""
		switch {
		case n == nil:
			reason = "not in the consensus"
		case !n.Flags.Has(netdir.Running):
			reason = "down"
		case n.Flags.Has(netdir.Degraded):
			reason = "degraded"
		case !n.Flags.Has(netdir.Guard):
			reason = "no longer flagged Guard"
		case avoid[n.Identity]:
			reason = "avoided"
		default:
			if c := s.conflict(n, exit); c != "" {
				reason = c + " as the exit"
				subnet = subnet || !s.allowSameSubnet && n.subnet == exit.subnet
			}
		}
		if reason == "" {
			return n, nil
		}
		name := e.Identity.String()
		if n != nil {
			name = n.String()
		}
		why = append(why, name+": "+reason)
	}
	if len(why) == 0 {
		return nil, fail(ErrNoGuard, "no usable guard for exit %s: the guard set is empty", exit)
	}
	err := fail(ErrNoGuard, "no usable guard for exit %s among the %d of the guard set (%s)",
		exit, len(why), strings.Join(why, "; "))
	if subnet {
		err = because(err, ErrSameSubnet)
	}
	return nil, err
}

// pickMiddle draws the middle by weight among the relays that fit beside the guard and the exit. A
// relay that is the exit's rendezvous is taken only when no other fits: should the middle fail, the
// rebuild needs the way to the exit that the client's directory names.
func (s *Selector) pickMiddle(guard, exit *node, avoid map[keys.IdentityPublic]bool) (*node, error) {
	var cands, rendezvous []*node
	for _, n := range s.nodes {
		if n.usable() && !avoid[n.Identity] && s.conflict(n, guard) == "" && s.conflict(n, exit) == "" {
			if exit.servesAsRendezvous(n) {
				rendezvous = append(rendezvous, n)
			} else {
				cands = append(cands, n)
			}
		}
	}
	if len(cands) == 0 {
		cands = rendezvous
	}
	if len(cands) == 0 {
		what := "/16 and families"
		if s.allowSameSubnet {
			what = "families"
		}
		if len(avoid) > 0 {
			what += ", not avoided"
		}
		err := fail(ErrNoMiddle, "no middle outside the guard's and exit's %s (guard %s, exit %s)",
			what, guard, exit)
		if !s.allowSameSubnet && s.fitsButForSubnet(guard, exit, avoid) {
			err = because(err, ErrSameSubnet)
		}
		return nil, err
	}
	return cands[s.draw(cands, false)], nil
}

// fitsButForSubnet reports whether some usable relay would be a middle between guard and exit if two
// hops could share a /16.
func (s *Selector) fitsButForSubnet(guard, exit *node, avoid map[keys.IdentityPublic]bool) bool {
	for _, n := range s.nodes {
		if n.usable() && !avoid[n.Identity] && n.Identity != guard.Identity && n.Identity != exit.Identity &&
			!sameFamily(n, guard) && !sameFamily(n, exit) {
			return true
		}
	}
	return false
}

// sampleGuard adds one guard to the set, drawn by weight among the Guard-flagged, usable relays that
// are not in the set, not avoided and not in the /16 or family of a guard already in it. It reports
// whether there was one.
func (s *Selector) sampleGuard(now time.Time, avoid map[keys.IdentityPublic]bool) bool {
	var cands []*node
	for _, n := range s.nodes {
		if !n.Flags.Has(netdir.Guard) || !n.usable() || avoid[n.Identity] || s.guards.contains(n.Identity) {
			continue
		}
		fits := true
		for _, e := range s.guards.guards {
			if g := s.byID[e.Identity]; g != nil && s.conflict(n, g) != "" {
				fits = false
				break
			}
		}
		if fits {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return false
	}
	n := cands[s.draw(cands, false)]
	spread := int64((GuardLifetimeMax - GuardLifetimeMin) / time.Second)
	s.guards.add(n.Identity, now, GuardLifetimeMin+time.Duration(s.rng.Int64N(spread))*time.Second)
	return true
}

// draw returns the index of one of ns, uniformly or by weight.
func (s *Selector) draw(ns []*node, uniform bool) int {
	if uniform {
		return s.rng.IntN(len(ns))
	}
	var total uint64
	for _, n := range ns {
		total += n.weight
	}
	x := s.rng.Uint64N(total)
	for i, n := range ns {
		if x < n.weight {
			return i
		}
		x -= n.weight
	}
	panic("path: weighted draw fell off the end") // x < total
}
