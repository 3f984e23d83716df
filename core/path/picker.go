package path

import (
	"errors"
	"slices"
	"sync"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// PickerConfig is what a Picker is made from.
type PickerConfig struct {
	// Guards is the client's guard set; GuardsFile, if set, is where it is saved whenever a pick
	// changed it (empty: kept in memory only).
	Guards     *GuardSet
	GuardsFile string
	// EntryGuards, if set, are the only relays that may be guards, whatever the directory says (the
	// user's entry_guards).
	EntryGuards []keys.IdentityPublic
	// AllowSameSubnet is Config.AllowSameSubnet.
	AllowSameSubnet bool
	// OnSaveError, if set, hears of a guard set that could not be saved (the pick goes on).
	OnSaveError func(error)
}

// Picker is path selection as a circuit manager asks for it (core/circmgr's Picker and GuardKeeper,
// through Choice): over the NetDir in use, which Update replaces, with one guard set throughout.
type Picker struct {
	cfg         PickerConfig
	entryGuards map[keys.IdentityPublic]bool

	mu  sync.Mutex
	sel *Selector
	dir *netdir.NetDir
}

// NewPicker returns a Picker with no directory yet: Update gives it one.
func NewPicker(cfg PickerConfig) (*Picker, error) {
	if cfg.Guards == nil {
		return nil, errors.New("path: no guard set")
	}
	p := &Picker{cfg: cfg}
	if len(cfg.EntryGuards) > 0 {
		p.entryGuards = make(map[keys.IdentityPublic]bool, len(cfg.EntryGuards))
		for _, id := range cfg.EntryGuards {
			p.entryGuards[id] = true
		}
	}
	return p, nil
}

// Update makes dir the network paths are picked from, and returns it as picks see it (with the entry
// guards the only guards).
func (p *Picker) Update(dir *netdir.NetDir) (*netdir.NetDir, error) {
	if p.entryGuards != nil {
		// The user's entry guards, and only they, may be guards, whatever the authorities say.
		dir = dir.Adjust(func(r *netdir.Relay) {
			if p.entryGuards[r.Identity] {
				r.Flags |= netdir.Guard
			} else {
				r.Flags &^= netdir.Guard
			}
		})
	}
	sel, err := New(Config{Dir: dir, Guards: p.cfg.Guards, AllowSameSubnet: p.cfg.AllowSameSubnet})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.sel, p.dir = sel, dir
	p.mu.Unlock()
	return dir, nil
}

// Dir returns the NetDir in use (nil before the first Update).
func (p *Picker) Dir() *netdir.NetDir {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dir
}

// ExitAllows is Selector.ExitAllows over the NetDir in use (false before the first Update).
func (p *Picker) ExitAllows(id keys.IdentityPublic, c ExitChoice) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sel != nil && p.sel.ExitAllows(id, c)
}

// HasExit reports whether the NetDir in use has an Exit-flagged relay named name.
func (p *Picker) HasExit(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dir != nil && slices.ContainsFunc(p.dir.Relays(), func(r netdir.Relay) bool {
		return r.Name == name && r.Flags.Has(netdir.Exit)
	})
}

// For returns the picker of paths for one exit choice. With portRequired only exits that allow
// c.Port are taken; otherwise they are preferred, and where the choice has none that does, any exit
// of it is taken (an exit whose policy refuses a packet answers with ICMP administratively
// prohibited, and the program fails at once, which beats having no exit at all). No path takes a
// relay of avoid.
func (p *Picker) For(c ExitChoice, portRequired bool, avoid ...netdir.Relay) *Choice {
	return &Choice{p: p, choice: c, portRequired: portRequired, avoid: avoid}
}

// Choice picks paths for one exit choice over a Picker's NetDir: a circuit manager's Picker and
// GuardKeeper.
type Choice struct {
	p            *Picker
	choice       ExitChoice
	portRequired bool
	avoid        []netdir.Relay
}

// Pick returns a path for the choice, avoiding the relays given; exit, when set, is the exit the path
// must end at (a rebuild that keeps the exit's session). attempt is not looked at: each Pick draws
// afresh. It saves the guard set when the pick changed it.
func (c *Choice) Pick(exit *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sel == nil {
		return nil, fail(ErrNoExit, "no directory yet")
	}
	choice, ids := c.ask(exit, avoid)
	rs, err := c.selectPath(choice, func(ch ExitChoice) ([]netdir.Relay, error) { return p.sel.Pick(ch, ids...) })
	if err != nil {
		return nil, err
	}
	if p.cfg.GuardsFile != "" && p.cfg.Guards.Changed() {
		if err := p.cfg.Guards.Save(p.cfg.GuardsFile); err != nil && p.cfg.OnSaveError != nil {
			p.cfg.OnSaveError(err)
		}
	}
	return rs, nil
}

// PickThrough returns a path for the choice through guard, the client's current guard, which it has
// just heard from (Selector.PickThrough).
func (c *Choice) PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sel == nil {
		return nil, fail(ErrNoGuard, "no directory yet")
	}
	choice, ids := c.ask(exit, avoid)
	return c.selectPath(choice, func(ch ExitChoice) ([]netdir.Relay, error) {
		return p.sel.PickThrough(guard.Identity, ch, ids...)
	})
}

// selectPath runs one of selection's picks for the choice, and again without its port when the port
// is only preferred and no exit of the choice allows it.
func (c *Choice) selectPath(choice ExitChoice, sel func(ExitChoice) ([]netdir.Relay, error)) ([]netdir.Relay, error) {
	rs, err := sel(choice)
	if err != nil && !c.portRequired && choice.Port != 0 && errors.Is(err, ErrNoExit) {
		choice.Port = 0
		rs, err = sel(choice)
	}
	return rs, err
}

// ask turns the manager's request into selection's terms: the exit choice (the exit of a rebuild, by
// identity, else the choice's) and the identities to avoid (the request's and the choice's).
func (c *Choice) ask(exit *netdir.Relay, avoid []netdir.Relay) (ExitChoice, []keys.IdentityPublic) {
	choice := c.choice
	if exit != nil {
		choice = ExitChoice{Mode: Named, Value: exit.Identity.String(), Proto: TCP}
	}
	ids := make([]keys.IdentityPublic, 0, len(avoid)+len(c.avoid))
	for _, r := range avoid {
		ids = append(ids, r.Identity)
	}
	for _, r := range c.avoid {
		ids = append(ids, r.Identity)
	}
	return choice, ids
}
