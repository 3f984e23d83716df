package clientd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/core/circmgr"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/detour"
	"github.com/meshvpn/meshvpn/core/engine"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
)

// detourOpenTimeout bounds opening one side circuit: a few paths of one build timeout each.
const detourOpenTimeout = 30 * time.Second

// DetourStatus is one second circuit that carries flows the main exit refused.
type DetourStatus struct {
	Flows []string `json:"flows"` // "tcp/8080"
	Path  []string `json:"path"`  // guard, middle, exit
	Up    bool     `json:"up"`
}

// portChoice is what an exit must allow to carry f, its protocol and port (Auto, anywhere); false for
// a flow that is not TCP or UDP, which no exit policy names by port.
func portChoice(f engine.Flow) (path.ExitChoice, bool) {
	switch f.Proto {
	case 6:
		return path.ExitChoice{Proto: path.TCP, Port: f.Port}, true
	case 17:
		return path.ExitChoice{Proto: path.UDP, Port: f.Port}, true
	}
	return path.ExitChoice{}, false
}

// startDetours sends flows the exit refuses over side circuits (core/detour), with a directory.
func (d *Daemon) startDetours() error {
	var err error
	d.detours, err = detour.New(detour.Config{Router: d.engine, Open: d.openDetour, PortRefused: d.mainExitRefuses, Logger: d.log.Named("detour")})
	if err != nil {
		return err
	}
	d.stack.Func("detours", d.detours.Close)
	d.engine.SetRefusalHook(d.detours.Refused)
	return nil
}

// mainExitRefuses reports whether, by the directory, the main circuit's exit refuses f's port: only
// then does another exit help (a refusal of an allowed port is about the destination).
func (d *Daemon) mainExitRefuses(f engine.Flow) bool {
	exit := d.mainExit.Load()
	if exit == nil {
		return false
	}
	c, ok := portChoice(f)
	return ok && !d.picker.ExitAllows(exit.Identity, c)
}

// openDetour opens a side circuit for f: its own circuit manager, whose picker asks for an exit that
// allows f (in the country or region the user's choice names, if it names one), other than the main
// circuit's exit, which refused f. Its guard goes around the tunnel and through the kill switch like
// the main circuit's.
func (d *Daemon) openDetour(ctx context.Context, f engine.Flow, set func(engine.Route)) (detour.Side, error) {
	choice, ok := portChoice(f)
	if !ok {
		return nil, fmt.Errorf("protocol %d has no ports an exit policy names", f.Proto)
	}
	d.exitMu.Lock()
	asked := d.exitChoice.Asked
	d.exitMu.Unlock()
	if c, err := parseExitChoice(asked, 0); err == nil && (c.Mode == path.Country || c.Mode == path.Region) {
		choice.Mode, choice.Value = c.Mode, c.Value
	}
	var avoid []netdir.Relay
	if ms := d.mgr.Status(); len(ms.Path) > 0 {
		avoid = append(avoid, ms.Path[len(ms.Path)-1])
	}
	picker := d.picker.For(choice, true, avoid...)
	// A port no exit allows is answered now: the manager would try until ctx ends, while the
	// program's refusal is held back.
	if _, err := picker.Pick(nil, nil, 0); err != nil {
		return nil, err
	}
	mgr, err := circmgr.New(circmgr.Config{
		Builder: builder{d},
		Picker:  picker,
		OnPath:  d.bypassGuard,
		OnCircuit: func(c circmgr.Circuit, p []netdir.Relay) {
			set(engine.Route{C: c.(*client.Circuit), IPv6: p[len(p)-1].IPv6})
		},
		Logger:      d.log.Named("detour"),
		MaxLifetime: d.cfg.MaxCircuitLifetime,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, detourOpenTimeout)
	defer cancel()
	if err := mgr.Start(ctx); err != nil {
		mgr.Close()
		if errors.Is(err, path.ErrNoExit) {
			return nil, err
		}
		return nil, fmt.Errorf("a second circuit: %w", err)
	}
	return &detourSide{mgr: mgr, dir: d.picker, choice: choice}, nil
}

// detourSide is a side circuit's manager.
type detourSide struct {
	mgr    *circmgr.Manager
	dir    *dirPicker
	choice path.ExitChoice // what it was opened for; another flow takes it if its exit allows that
}

// Allows implements detour.Side: by the directory, the side's exit allows f.
func (s *detourSide) Allows(f engine.Flow) bool {
	ms := s.mgr.Status()
	p, ok := portChoice(f)
	if len(ms.Path) == 0 || !ok {
		return false
	}
	c := s.choice // its place, if the user's choice named one; f's protocol and port
	c.Proto, c.Port = p.Proto, p.Port
	return s.dir.ExitAllows(ms.Path[len(ms.Path)-1].Identity, c)
}

// Close implements detour.Side.
func (s *detourSide) Close() { s.mgr.Close() }

// detourStatus fills what status says of the side circuits.
func (d *Daemon) detourStatus(s *Status) {
	if d.detours == nil {
		return
	}
	sides, failed := d.detours.Status()
	for _, v := range sides {
		ds := DetourStatus{Up: v.Up}
		for _, f := range v.Flows {
			ds.Flows = append(ds.Flows, f.String())
		}
		if side, ok := v.Side.(*detourSide); ok {
			for _, r := range side.mgr.Status().Path {
				ds.Path = append(ds.Path, r.Name)
			}
		}
		s.Detours = append(s.Detours, ds)
	}
	for _, f := range failed {
		s.NoExitAllows = append(s.NoExitAllows, f.String())
	}
}
