package circmgr

import (
	"errors"
	"fmt"
	"github.com/meshvpn/meshvpn/core/netdir"
	"math/rand/v2"
	"sync"
)

// listPicker is the manager tests' picker: a deterministic one over a plain list of relays — distinct
// relays, the exit by name or at random, relays that are not exits for the guard and middle while
// there are enough of them, and one guard kept for as long as it is not avoided. A client picks with
// core/path's Selector (whose own tests pin the same behaviour); the manager's tests need a picker
// whose choices they can predict.
type listPicker struct {
	relays []netdir.Relay
	exit   string
	s      *listShared
}

// listShared is what a listPicker and those WithExit derives from it share: the randomness and the
// guard, which a change of exit keeps.
type listShared struct {
	mu    sync.Mutex
	rand  *rand.Rand
	guard string // kept across picks while it is not avoided
}

// newListPicker checks the list: at least three relays, an exit, the named exit among them.
func newListPicker(relays []netdir.Relay, exit string, r *rand.Rand) (*listPicker, error) {
	var errs []error
	exits := 0
	for _, x := range relays {
		if x.Flags.Has(netdir.Exit) {
			exits++
		}
	}
	if exits == 0 {
		errs = append(errs, errors.New("circmgr: no exit among the relays"))
	}
	if len(relays) < 3 {
		errs = append(errs, fmt.Errorf("circmgr: %d relays, a circuit needs 3", len(relays)))
	}
	if exit != "" {
		found := false
		for _, x := range relays {
			found = found || x.Name == exit && x.Flags.Has(netdir.Exit)
		}
		if !found {
			errs = append(errs, fmt.Errorf("circmgr: no exit named %q", exit))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &listPicker{relays: relays, exit: exit, s: &listShared{rand: r}}, nil
}

// WithExit returns a picker over the same relays, with the same guard, whose paths end at the exit
// named (empty: one at random): the user's choice of a new exit while the client runs.
func (p *listPicker) WithExit(exit string) (*listPicker, error) {
	if exit != "" {
		found := false
		for _, x := range p.relays {
			found = found || x.Name == exit && x.Flags.Has(netdir.Exit)
		}
		if !found {
			return nil, fmt.Errorf("circmgr: no exit named %q", exit)
		}
	}
	return &listPicker{relays: p.relays, exit: exit, s: p.s}, nil
}

// Pick returns guard, middle and exit.
func (p *listPicker) Pick(exit *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	skip := map[string]bool{}
	for _, r := range avoid {
		skip[r.Name] = true
	}
	var x netdir.Relay
	switch {
	case exit != nil:
		x = *exit
	case p.exit != "":
		x = p.relay(p.exit)
	default:
		var exits []netdir.Relay
		for _, r := range p.relays {
			if r.Flags.Has(netdir.Exit) && !skip[r.Name] {
				exits = append(exits, r)
			}
		}
		if len(exits) == 0 {
			return nil, errors.New("circmgr: every exit is to be avoided")
		}
		x = exits[p.s.rand.IntN(len(exits))]
	}
	skip[x.Name] = true
	cands := p.candidates(skip, false)
	if len(cands) < 2 { // too few plain relays: exits take a guard's or middle's place too
		cands = p.candidates(skip, true)
	}
	if len(cands) < 2 {
		return nil, fmt.Errorf("circmgr: too few relays for a path to %s avoiding %d", x.Name, len(avoid))
	}
	guard, ok := netdir.Relay{}, false
	for _, c := range cands {
		if c.Name == p.s.guard {
			guard, ok = c, true
		}
	}
	if !ok {
		guard = cands[p.s.rand.IntN(len(cands))]
		p.s.guard = guard.Name
	}
	var middles []netdir.Relay
	for _, c := range cands {
		if c.Name != guard.Name {
			middles = append(middles, c)
		}
	}
	middle := middles[(attempt+p.s.rand.IntN(len(middles)))%len(middles)]
	return []netdir.Relay{guard, middle, x}, nil
}

// candidates lists the relays that may be a guard or middle: not skipped; exits only if withExits,
// after the plain relays.
func (p *listPicker) candidates(skip map[string]bool, withExits bool) []netdir.Relay {
	var plain, exits []netdir.Relay
	for _, r := range p.relays {
		switch {
		case skip[r.Name]:
		case r.Flags.Has(netdir.Exit):
			exits = append(exits, r)
		default:
			plain = append(plain, r)
		}
	}
	if withExits {
		return append(plain, exits...)
	}
	return plain
}

func (p *listPicker) relay(name string) netdir.Relay {
	for _, r := range p.relays {
		if r.Name == name {
			return r
		}
	}
	panic("circmgr: unknown relay " + name) // checked by newListPicker
}
