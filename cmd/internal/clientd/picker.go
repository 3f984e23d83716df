package clientd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/dirclient"
	"github.com/meshvpn/meshvpn/core/circmgr"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// dirPicker picks paths with core/path from the latest consensus; the guard set lives on disk.
type dirPicker struct {
	choice     path.ExitChoice
	sameSubnet bool
	guardsFile string
	// entryGuards, if set, are the only relays that may be guards (entry_guards).
	entryGuards map[keys.IdentityPublic]bool
	guards      *path.GuardSet
	log         *zap.Logger

	mu       sync.Mutex
	sel      *path.Selector
	byID     map[keys.IdentityPublic]circmgr.Relay
	fresh    time.Time // when the consensus in use was fetched
	agreeing int       // authorities whose documents it counted
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

// update makes net the network paths are picked from.
func (p *dirPicker) update(net *dirclient.Network) error {
	rs := make([]path.Relay, len(net.Relays))
	byID := make(map[keys.IdentityPublic]circmgr.Relay, len(net.Relays))
	for i, r := range net.Relays {
		rs[i] = r.Path
		if p.entryGuards != nil {
			// The user's entry guards, and only they, may be guards, whatever the authorities say.
			if p.entryGuards[r.Path.Identity] {
				rs[i].Flags |= path.Guard
			} else {
				rs[i].Flags &^= path.Guard
			}
		}
		byID[r.Path.Identity] = circmgr.Relay{Name: r.Path.Name, Info: r.Info, Exit: r.Descriptor.IsExit()}
	}
	sel, err := path.New(path.Config{Relays: rs, Guards: p.guards, AllowSameSubnet: p.sameSubnet})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sel, p.byID, p.fresh, p.agreeing = sel, byID, time.Now(), len(net.Consensus.Sources)
	p.mu.Unlock()
	return nil
}

// Pick implements circmgr.Picker.
func (p *dirPicker) Pick(exit *circmgr.Relay, avoid []circmgr.Relay, _ int) ([]circmgr.Relay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	choice, ids := p.ask(exit, avoid)
	rs, err := p.sel.Pick(choice, ids...)
	if err != nil {
		return nil, err
	}
	if p.guards.Changed() {
		if err := p.guards.Save(p.guardsFile); err != nil {
			p.log.Warn("saving the guard set", zap.Error(err))
		}
	}
	out := make([]circmgr.Relay, len(rs))
	for i, r := range rs {
		out[i] = p.byID[r.Identity]
	}
	return out, nil
}

// PickThrough implements circmgr.GuardKeeper: a path through the guard the client has just heard from.
func (p *dirPicker) PickThrough(guard circmgr.Relay, exit *circmgr.Relay, avoid []circmgr.Relay) ([]circmgr.Relay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	choice, ids := p.ask(exit, avoid)
	rs, err := p.sel.PickThrough(guard.Info.Identity, choice, ids...)
	if err != nil {
		return nil, err
	}
	out := make([]circmgr.Relay, len(rs))
	for i, r := range rs {
		out[i] = p.byID[r.Identity]
	}
	return out, nil
}

// ask turns the manager's request into path selection's terms: the exit choice (the named exit of a
// rebuild, else the user's) and the identities to avoid. p.mu is held.
func (p *dirPicker) ask(exit *circmgr.Relay, avoid []circmgr.Relay) (path.ExitChoice, []keys.IdentityPublic) {
	choice := p.choice
	if exit != nil {
		choice = path.ExitChoice{Mode: path.Named, Value: exit.Info.Identity.String(), Proto: path.TCP}
	}
	ids := make([]keys.IdentityPublic, len(avoid))
	for i, r := range avoid {
		ids[i] = r.Info.Identity
	}
	return choice, ids
}

// fetchUntil fetches the network, retrying until it works or ctx ends.
func fetchUntil(ctx context.Context, f *dirclient.Fetcher, log *zap.Logger) (*dirclient.Network, error) {
	for attempt := 0; ; attempt++ {
		net, err := f.Fetch(ctx, time.Now())
		if err == nil {
			for _, p := range net.Problems {
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
