package clientd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/core/circmgr"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
)

// ExitInfo is one exit as `meshvpn-client exits` lists it.
type ExitInfo struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
	Address  string `json:"address"`
	Country  string `json:"country,omitempty"`
	Region   string `json:"region,omitempty"`
	// Bandwidth is what the exit advertises (bytes/s); Weight what the authorities measured, which
	// auto picks by.
	Bandwidth uint64 `json:"bandwidth,omitempty"`
	Weight    uint64 `json:"weight,omitempty"`
	// Ports is the exit policy summary: the TCP and UDP ports it carries to the internet at large
	// ("tcp=80,443 udp=none"). Narrower refusals (some networks on a port) come back as ICMP
	// administratively prohibited.
	Ports string `json:"ports"`
	// Families are the address families the exit carries.
	Families []string `json:"families"`
	// State is "running", "down" or "degraded" by the directory ("listed" for a relay list).
	State string `json:"state"`
	InUse bool   `json:"in_use"`
}

// ExitList is the answer to `meshvpn-client exits`.
type ExitList struct {
	Source string     `json:"source"` // "directory" or "relay list"
	Exits  []ExitInfo `json:"exits"`
}

// ExitChoiceStatus is the choice of exit in force: the config's, or the last set-exit's.
type ExitChoiceStatus struct {
	Asked string `json:"asked"` // auto, random, country:DE, region:NAME, or an exit's identity or name
	// Port is the destination the exit must allow ("tcp/25") when Required, else the one exits are
	// preferred for (exit_port).
	Port     string `json:"port,omitempty"`
	Required bool   `json:"port_required,omitempty"`
	// Pinned says the exit is the user's by name: rebuilds wait for it rather than move elsewhere.
	Pinned bool `json:"pinned"`
}

// ExitMove is one change of exit the user asked for (set-exit). Unless Stayed, the client moved to a
// new exit session: connections made through the old exit were lost.
type ExitMove struct {
	At     time.Time `json:"at"`
	Asked  string    `json:"asked"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Path   []string  `json:"path,omitempty"`
	Stayed bool      `json:"stayed"` // the exit in use fit the choice: nothing changed
}

// SetExitRequest is what `meshvpn-client set-exit` asks of the daemon.
type SetExitRequest struct {
	// Exit is auto, random, country:CC, region:NAME, or one exit's identity (or name, when no other
	// relay claims it).
	Exit string `json:"exit"`
	// Port, if set ("tcp/25", "udp/53", or "25" for TCP), is a destination the new exit must allow.
	Port string `json:"port,omitempty"`
}

// InputError is a set-exit request that cannot be followed as asked: a malformed choice, or one no
// exit of the network fits. The control socket answers it with 400.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func badInput(format string, args ...any) error {
	return &InputError{fmt.Errorf(format, args...)}
}

// setExitTimeout bounds one set-exit: circmgr tries a few paths of one build timeout each.
const setExitTimeout = 30 * time.Second

// ParsePort reads a destination as set-exit and `exits --port` take it: "tcp/25", "udp/53", or "25"
// (TCP).
func ParsePort(s string) (path.Proto, uint16, error) {
	proto, num := path.TCP, s
	if p, n, ok := strings.Cut(s, "/"); ok {
		switch strings.ToLower(p) {
		case "tcp":
		case "udp":
			proto = path.UDP
		default:
			return 0, 0, fmt.Errorf("port %q: want tcp/PORT, udp/PORT or PORT", s)
		}
		num = n
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return 0, 0, fmt.Errorf("port %q: want a port from 1 to 65535 (tcp/PORT, udp/PORT or PORT)", s)
	}
	return proto, uint16(n), nil
}

// checkChoice refuses what parseExitChoice lets through but no exit can match: a country that is not
// two letters, a value with spaces or control characters.
func checkChoice(c path.ExitChoice) error {
	if c.Mode == path.Country && (len(c.Value) != 2 || !isLetters(c.Value)) {
		return fmt.Errorf("country %q: want a two-letter country code (ISO 3166-1), for example country:DE", c.Value)
	}
	if len(c.Value) > 100 || strings.IndexFunc(c.Value, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return fmt.Errorf("exit %q: want at most 100 characters of printable ASCII", c.Value)
	}
	return nil
}

func isLetters(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// SetExit moves the client to the exit req asks for while it runs (circmgr.Manager.Retarget): a
// circuit to the new exit first, then the switch; connections through the old exit are lost. When no
// circuit to the new exit can be built, the old circuit and choice stay and the error says why.
func (d *Daemon) SetExit(ctx context.Context, req SetExitRequest) (ExitMove, error) {
	d.setExitMu.Lock() // one set-exit at a time: the choice in status is the one in force
	defer d.setExitMu.Unlock()
	if d.mgr == nil || !d.ready.Load() {
		return ExitMove{}, ErrStarting
	}
	to, choice, err := d.target(req)
	if err != nil {
		return ExitMove{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, setExitTimeout)
	defer cancel()
	mv, err := d.mgr.Retarget(ctx, to)
	if err != nil {
		if errors.Is(err, path.ErrNoExit) {
			return ExitMove{}, &InputError{err}
		}
		return ExitMove{}, err
	}
	d.exitMu.Lock()
	d.exitChoice = choice
	d.exitMu.Unlock()
	if d.detours != nil && !mv.Stayed {
		d.detours.Reset() // the new exit may allow what the old one refused, and the choice changed
	}
	return ExitMove{At: mv.At, Asked: mv.Asked, From: mv.From, To: mv.To, Path: mv.Path, Stayed: mv.Stayed}, nil
}

// target turns a set-exit request into the manager's Target, and the choice status will show.
func (d *Daemon) target(req SetExitRequest) (circmgr.Target, ExitChoiceStatus, error) {
	asked := strings.TrimSpace(req.Exit)
	if asked == "" {
		return circmgr.Target{}, ExitChoiceStatus{}, badInput("set-exit: which exit? auto, random, country:CC, region:NAME, or an exit's identity (see meshvpn-client exits)")
	}
	st := ExitChoiceStatus{Asked: asked}
	var proto path.Proto
	var port uint16
	if req.Port != "" {
		var err error
		if proto, port, err = ParsePort(req.Port); err != nil {
			return circmgr.Target{}, st, &InputError{err}
		}
		st.Port, st.Required = fmt.Sprintf("%s/%d", proto, port), true
	}
	if d.listPicker != nil {
		return d.listTarget(asked, port, st)
	}
	c, err := parseExitChoice(asked, 0)
	if err == nil {
		err = checkChoice(c)
	}
	if err != nil {
		return circmgr.Target{}, st, &InputError{err}
	}
	c.Proto, c.Port = proto, port
	required := port != 0
	if port == 0 && d.cfg.ExitPort != 0 { // no port asked: the config's exit_port stays the preference
		c.Port = d.cfg.ExitPort
		st.Port = fmt.Sprintf("tcp/%d", d.cfg.ExitPort)
	}
	st.Pinned = c.Mode == path.Named
	return circmgr.Target{Picker: d.picker.For(c, required), Pinned: st.Pinned, Asked: asked}, st, nil
}

// listTarget is target for a relay list, which knows exits by name and nothing of their places.
func (d *Daemon) listTarget(asked string, port uint16, st ExitChoiceStatus) (circmgr.Target, ExitChoiceStatus, error) {
	if port != 0 {
		return circmgr.Target{}, st, badInput("set-exit --port: a relay list does not say what its exits allow; name an exit")
	}
	name := asked
	switch kind, _, _ := strings.Cut(asked, ":"); {
	case asked == "auto" || asked == "random":
		name = ""
	case kind == "country" || kind == "region":
		return circmgr.Target{}, st, badInput("set-exit %s: a relay list says nothing of countries or regions; name an exit, or random", asked)
	}
	if name != "" && !d.listPicker.HasExit(name) {
		return circmgr.Target{}, st, badInput("no exit named %q", name)
	}
	st.Pinned = name != ""
	return circmgr.Target{Picker: d.listPicker.For(listChoice(name), false), Pinned: st.Pinned, Asked: asked}, st, nil
}

// initialExitChoice is the choice in force at start: the config's.
func initialExitChoice(cfg Config) ExitChoiceStatus {
	st := ExitChoiceStatus{Asked: cfg.Exit}
	if st.Asked == "" {
		st.Asked = "auto"
		if cfg.Genesis == "" {
			st.Asked = "random"
		}
	}
	if cfg.Genesis != "" {
		if cfg.ExitPort != 0 {
			st.Port = fmt.Sprintf("tcp/%d", cfg.ExitPort)
		}
		c, err := parseExitChoice(cfg.Exit, cfg.ExitPort)
		st.Pinned = err == nil && c.Mode == path.Named
	} else {
		st.Pinned = cfg.Exit != ""
	}
	return st
}

// Exits lists the exits of the directory in use (or the relay list), best measured first.
func (d *Daemon) Exits() ExitList {
	var l ExitList
	if d.picker != nil {
		d.picker.mu.Lock()
		l = ExitList{Source: "directory", Exits: append([]ExitInfo(nil), d.picker.exits...)}
		d.picker.mu.Unlock()
	} else {
		l = ExitList{Source: "relay list", Exits: append([]ExitInfo(nil), d.listExits...)}
	}
	var inUse string
	if d.mgr != nil {
		if p := d.mgr.Status().Path; len(p) > 0 {
			inUse = p[len(p)-1].Identity.String()
		}
	}
	for i := range l.Exits {
		l.Exits[i].InUse = l.Exits[i].Identity == inUse
	}
	return l
}

// directoryExits lists the exits of a fetched network, best measured first.
func directoryExits(dir *netdir.NetDir) []ExitInfo {
	var out []ExitInfo
	for _, r := range dir.Relays() {
		if !r.Flags.Has(netdir.Exit) && !r.IsExit() {
			continue
		}
		e := ExitInfo{Name: r.Name, Identity: r.Identity.String(), Address: r.Addr.String(),
			Country: r.Country, Region: r.Region, Weight: r.Weight, Ports: r.Exit.String(),
			Families: families(r.IPv6), State: "running", Bandwidth: r.Bandwidth}
		switch {
		case !r.Flags.Has(netdir.Running):
			e.State = "down"
		case r.Flags.Has(netdir.Degraded):
			e.State = "degraded"
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}

// families names the address families an exit carries.
func families(ipv6 bool) []string {
	if ipv6 {
		return []string{"ipv4", "ipv6"}
	}
	return []string{"ipv4"}
}

// listExits lists the exits of a relay list.
func listExits(rs []netdir.Relay) []ExitInfo {
	var out []ExitInfo
	for _, e := range rs {
		if e.Flags.Has(netdir.Exit) {
			out = append(out, ExitInfo{Name: e.Name, Identity: e.Identity.String(), Address: e.Addr.String(),
				Ports: e.Exit.String(), Families: families(e.IPv6), State: "listed"})
		}
	}
	return out
}

// exitStatus fills what status says of the exit choice, the moves and the refusals.
func (d *Daemon) exitStatus(s *Status, ms circmgr.Status) {
	d.exitMu.Lock()
	s.Exit = d.exitChoice
	d.exitMu.Unlock()
	s.Exit.Pinned = ms.Pinned
	for _, mv := range ms.Moves {
		s.ExitMoves = append(s.ExitMoves, ExitMove{At: mv.At, Asked: mv.Asked, From: mv.From, To: mv.To, Path: mv.Path, Stayed: mv.Stayed})
	}
	if d.engine != nil {
		if r := d.engine.Refused(); len(r) > 0 {
			s.Refused = r
		}
	}
}
