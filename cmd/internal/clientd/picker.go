package clientd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// dirPicker is the client's path selection (core/path's Picker) over the latest directory, or over
// the relay list, with the config's choice of exit (exit, exit_port) for the main circuit; a set-exit
// or a detour picks with For over the same directory and guard set. It keeps the exit list `exits`
// shows.
type dirPicker struct {
	*path.Picker
	choice path.ExitChoice

	mu    sync.Mutex
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
	pc := path.PickerConfig{GuardsFile: filepath.Join(cfg.StateDir, "guards"), AllowSameSubnet: cfg.AllowSameSubnet,
		OnSaveError: func(err error) { log.Warn("saving the guard set", zap.Error(err)) }}
	for _, g := range cfg.EntryGuards {
		id, _ := keys.ParseIdentityPublic(g) // checked by Validate
		pc.EntryGuards = append(pc.EntryGuards, id)
	}
	if pc.Guards, err = path.LoadOrNewGuardSet(pc.GuardsFile); err != nil {
		return nil, err
	}
	pp, err := path.NewPicker(pc)
	if err != nil {
		return nil, err
	}
	return &dirPicker{Picker: pp, choice: choice}, nil
}

// newListPicker is the picker over a relay list: path selection over relaylist.NetDir's snapshot of
// it (the relays that are not exits are the guards; no /16 rule, since a list's relays often share
// one), its exit the one named or any at random, whatever port; its guard set is kept in memory only.
// It checks the list first: at least three relays, an exit, the named exit among them.
func newListPicker(relays []netdir.Relay, exit string) (*dirPicker, error) {
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
	pp, err := path.NewPicker(path.PickerConfig{Guards: path.NewGuardSet(), AllowSameSubnet: true})
	if err != nil {
		return nil, err
	}
	p := &dirPicker{Picker: pp, choice: listChoice(exit)}
	return p, p.update(dir)
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
	dir, err := p.Picker.Update(dir)
	if err != nil {
		return err
	}
	exits := directoryExits(dir)
	p.mu.Lock()
	p.exits = exits
	p.mu.Unlock()
	return nil
}

// Pick implements circmgr.Picker with the config's choice of exit, exit_port preferred.
func (p *dirPicker) Pick(exit *netdir.Relay, avoid []netdir.Relay, attempt int) ([]netdir.Relay, error) {
	return p.For(p.choice, false).Pick(exit, avoid, attempt)
}

// PickThrough implements circmgr.GuardKeeper: a path through the guard the client has just heard from.
func (p *dirPicker) PickThrough(guard netdir.Relay, exit *netdir.Relay, avoid []netdir.Relay) ([]netdir.Relay, error) {
	return p.For(p.choice, false).PickThrough(guard, exit, avoid)
}
