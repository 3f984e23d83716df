package clientd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// dirPicker picks paths with core/path from the latest consensus; the guard set lives on disk. Its
// choice of exit is the config's (exit, exit_port); a set-exit picks with a choicePicker over it.
type dirPicker struct {
	choice     path.ExitChoice
	sameSubnet bool
	guardsFile string
	// entryGuards, if set, are the only relays that may be guards (entry_guards).
	entryGuards map[keys.IdentityPublic]bool
	guards      *path.GuardSet
	log         *zap.Logger

	mu    sync.Mutex
	sel   *path.Selector
	dir   *netdir.NetDir // the one in use: when fetched, from how many authorities
	exits []ExitInfo
}

// parseExitChoice reads the exit setting: "" or "auto", "random", "country:DE", "region:NAME", or an
// exit's identity (or name).
func parseExitChoice(s string, port uint16) (path.ExitChoice, error) {
	c := path.ExitChoice{Proto: path.TCP, Port: port}
	switch kind, value, _ := strings.Cut(s, ":"); {
	case s == "" || s == "auto":
		c.Mode = path.Auto
	case s == "random":
		c.Mode = path.Random
	case kind == "country":
		c.Mode, c.Value = path.Country, strings.ToUpper(value)
	case kind == "region":
		c.Mode, c.Value = path.Region, value
	default:
		c.Mode, c.Value = path.Named, s
	}
	if c.Mode != path.Auto && c.Mode != path.Random && c.Value == "" {
		return c, fmt.Errorf("exit %q: nothing after the colon", s)
	}
	return c, nil
}

func newDirPicker(cfg Config, log *zap.Logger) (*dirPicker, error) {
	choice, err := parseExitChoice(cfg.Exit, cfg.ExitPort)
	if err != nil {
		return nil, err
	}
	p := &dirPicker{choice: choice, sameSubnet: cfg.AllowSameSubnet, guardsFile: filepath.Join(cfg.StateDir, "guards"), log: log}
	for _, g := range cfg.EntryGuards {
		id, _ := keys.ParseIdentityPublic(g) // checked by Validate
		if p.entryGuards == nil {
			p.entryGuards = make(map[keys.IdentityPublic]bool)
		}
		p.entryGuards[id] = true
	}
	if p.guards, err = path.LoadOrNewGuardSet(p.guardsFile); err != nil {
		return nil, err
	}
	return p, nil
}

// newListPicker is the picker over a relay list: path selection over relaylist.NetDir's snapshot of
// it (the relays that are not exits are the guards; no /16 rule, since a list's relays often share
// one), its exit the one named or any at random, whatever port; its guard set is kept in memory only.
// It checks the list first: at least three relays, an exit, the named exit among them.
func newListPicker(relays []netdir.Relay, exit string, log *zap.Logger) (*dirPicker, error) {
	var errs []error
	exits, named := 0, false
	for _, r := range relays {
		if r.Flags.Has(netdir.Exit) {
			exits++
			named = named || r.Name == exit
		}
	}
	if exits == 0 {
		errs = append(errs, errors.New("no exit among the relays"))
	}
	if len(relays) < 3 {
		errs = append(errs, fmt.Errorf("%d relays, a circuit needs 3", len(relays)))
	}
	if exit != "" && !named {
		errs = append(errs, fmt.Errorf("no exit named %q", exit))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	dir, err := relaylist.NetDir(relays)
	if err != nil {
		return nil, err
	}
	p := &dirPicker{choice: listChoice(exit), sameSubnet: true, guards: path.NewGuardSet(), log: log}
	return p, p.update(dir)
}

// hasExit reports whether the network has an exit named name.
func (p *dirPicker) hasExit(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.ContainsFunc(p.dir.Relays(), func(r netdir.Relay) bool { return r.Name == name && r.Flags.Has(netdir.Exit) })
}

// listChoice is the exit choice of a relay list's exit setting: the exit named, or any at random.
func listChoice(exit string) path.ExitChoice {
	if exit == "" {
		return path.ExitChoice{Mode: path.Random, Proto: path.TCP}
	}
	return path.ExitChoice{Mode: path.Named, Value: exit, Proto: path.TCP}
}

// update makes dir the network paths are picked from.
func (p *dirPicker) update(dir *netdir.NetDir) error {
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
	exits := directoryExits(dir)
	sel, err := path.New(path.Config{Dir: dir, Guards: p.guards, AllowSameSubnet: p.sameSubnet})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sel, p.dir, p.exits = sel, dir, exits
	p.mu.Unlock()
	return nil
}

// Pick implements circmgr.Picker with the config's choice of exit, exit_port preferred.
func (p *dirPicker) Pick(exit *netdir.Relay, avoid []netdir.Relay, _ int) ([]netdir.Relay, error) {
	return p.pick(p.choice, false, exit, avoid)
}

// PickThrough implements circmgr.GuardKeeper: a path through the guard the client has just heard from.
func (p *dirPicker) PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	return p.pickThrough(p.choice, false, guard, exit, avoid)
}

// choicePicker picks over a dirPicker's directory for an exit choice of the user's set-exit.
type choicePicker struct {
	dir    *dirPicker
	choice path.ExitChoice
	// portRequired: only exits that allow choice.Port are taken. Otherwise (exit_port) they are
	// preferred, and where the choice has none that does, any exit of it is taken.
	portRequired bool
	// avoid are relays no path of it takes (a detour's: the exit that refused its flow).
	avoid []netdir.Relay
}

// Pick implements circmgr.Picker.
func (c *choicePicker) Pick(exit *netdir.Relay, avoid []netdir.Relay, _ int) ([]netdir.Relay, error) {
	return c.dir.pick(c.choice, c.portRequired, exit, append(avoid[:len(avoid):len(avoid)], c.avoid...))
}

// PickThrough implements circmgr.GuardKeeper.
func (c *choicePicker) PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	return c.dir.pickThrough(c.choice, c.portRequired, guard, exit, append(avoid[:len(avoid):len(avoid)], c.avoid...))
}

// exitAllows reports whether, by the directory in use, the exit with identity id allows what c asks
// of an exit (its protocol, port and address family).
func (p *dirPicker) exitAllows(id keys.IdentityPublic, c path.ExitChoice) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sel != nil && p.sel.ExitAllows(id, c)
}

// selectPath runs one of path selection's picks for the choice, and again without its port when the
// port is only preferred and no exit of the choice allows it: an exit whose policy refuses a packet
// answers it with ICMP administratively prohibited, and the program fails at once, which beats having
// no exit at all.
func selectPath(choice path.ExitChoice, portRequired bool, sel func(path.ExitChoice) ([]netdir.Relay, error)) ([]netdir.Relay, error) {
	rs, err := sel(choice)
	if err != nil && !portRequired && choice.Port != 0 && errors.Is(err, path.ErrNoExit) {
		choice.Port = 0
		rs, err = sel(choice)
	}
	return rs, err
}

func (p *dirPicker) pick(c path.ExitChoice, portRequired bool, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	choice, ids := p.ask(c, exit, avoid)
	rs, err := selectPath(choice, portRequired, func(c path.ExitChoice) ([]netdir.Relay, error) { return p.sel.Pick(c, ids...) })
	if err != nil {
		return nil, err
	}
	if p.guardsFile != "" && p.guards.Changed() {
		if err := p.guards.Save(p.guardsFile); err != nil {
			p.log.Warn("saving the guard set", zap.Error(err))
		}
	}
	return rs, nil
}

func (p *dirPicker) pickThrough(c path.ExitChoice, portRequired bool, guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	choice, ids := p.ask(c, exit, avoid)
	rs, err := selectPath(choice, portRequired, func(c path.ExitChoice) ([]netdir.Relay, error) {
		return p.sel.PickThrough(guard.Identity, c, ids...)
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// ask turns the manager's request into path selection's terms: the exit choice (the named exit of a
// rebuild, else the user's) and the identities to avoid. p.mu is held.
func (p *dirPicker) ask(choice path.ExitChoice, exit *netdir.Relay, avoid []netdir.Relay) (path.ExitChoice, []keys.IdentityPublic) {
	if exit != nil {
		choice = path.ExitChoice{Mode: path.Named, Value: exit.Identity.String(), Proto: path.TCP}
	}
	ids := make([]keys.IdentityPublic, len(avoid))
	for i, r := range avoid {
		ids[i] = r.Identity
	}
	return choice, ids
}

// fetchUntil fetches the network, retrying until it works or ctx ends.
func fetchUntil(ctx context.Context, f *netdir.Fetcher, log *zap.Logger) (*netdir.NetDir, error) {
	for attempt := 0; ; attempt++ {
		net, err := f.Fetch(ctx, time.Now())
		if err == nil {
			for _, p := range net.Problems() {
				log.Info("directory", zap.Error(p))
			}
			return net, nil
		}
		log.Warn("no directory yet", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no directory: %w (last: %v)", ctx.Err(), err)
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}
