package clientd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/circmgr"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ticket"
)

// fakeBuilder builds circuits that work, except through the relays it refuses.
type fakeBuilder struct {
	mu     sync.Mutex
	refuse map[keys.IdentityPublic]bool
	built  int
}

func (b *fakeBuilder) Build(_ context.Context, p []netdir.Relay) (circmgr.Circuit, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range p {
		if b.refuse[r.Identity] {
			return nil, errors.New("step timeout")
		}
	}
	b.built++
	return &fakeCirc{done: make(chan struct{})}, nil
}

type fakeCirc struct {
	done chan struct{}
	once sync.Once
}

func (c *fakeCirc) Begin(context.Context, *ticket.Ticket) (ticket.Ticket, bool, error) {
	return ticket.Ticket{}, false, nil
}
func (c *fakeCirc) Done() <-chan struct{} { return c.done }
func (c *fakeCirc) Err() error            { return nil }
func (c *fakeCirc) Close()                { c.once.Do(func() { close(c.done) }) }

// listDaemon is a started daemon over a relay list of five relays and the exits x1, x2, through fake
// circuits, with its control socket.
func listDaemon(t *testing.T, b *fakeBuilder) (*Daemon, *Control, []netdir.Relay) {
	t.Helper()
	var es []netdir.Relay
	for i := range 7 {
		e := relayEntry(t, i+1, i >= 5)
		if e.Flags.Has(netdir.Exit) {
			e.Name = fmt.Sprintf("x%d", i-4)
			e.Exit, _ = exitports.Parse("tcp=1-24,26-65535 udp=none")
		}
		es = append(es, e)
	}
	d := newTestDaemon()
	d.cfg.Exit = "x1"
	d.exitChoice = initialExitChoice(d.cfg)
	var err error
	if d.listPicker, err = newListPicker(es, "x1"); err != nil {
		t.Fatal(err)
	}
	d.listExits = listExits(es)
	startManager(t, d, b, d.listPicker, true)
	path := filepath.Join(socketDir(t), "c.sock")
	serveControl(t, path, d)
	return d, dial(t, path), es
}

func startManager(t *testing.T, d *Daemon, b *fakeBuilder, p circmgr.Picker, pinned bool) {
	t.Helper()
	var err error
	d.mgr, err = circmgr.New(circmgr.Config{Builder: b, Picker: p, ExitPinned: pinned, Backoff: time.Millisecond, BuildTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.mgr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.mgr.Close)
	d.ready.Store(true)
}

func exitOf(t *testing.T, ctl *Control) string {
	t.Helper()
	s, err := ctl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s.Circuit.Hops[len(s.Circuit.Hops)-1].Name
}

// TestControlExitsAndSetExit: `exits` lists the relay list's exits and the one in use; `set-exit x2`
// moves the running client to x2, pinned, and status says so.
func TestControlExitsAndSetExit(t *testing.T) {
	_, ctl, es := listDaemon(t, &fakeBuilder{})
	l, err := ctl.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != "relay list" || len(l.Exits) != 2 || l.Exits[0].Name != "x1" || !l.Exits[0].InUse || l.Exits[1].InUse ||
		l.Exits[1].Identity != es[6].Identity.String() || l.Exits[0].Ports != "tcp=1-24,26-65535 udp=none" {
		t.Fatalf("exits %+v", l)
	}
	mv, err := ctl.SetExit(t.Context(), SetExitRequest{Exit: "x2"})
	if err != nil {
		t.Fatal(err)
	}
	if mv.From != "x1" || mv.To != "x2" || mv.Stayed {
		t.Fatalf("move %+v", mv)
	}
	s, err := ctl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if exitOf(t, ctl) != "x2" || s.Exit.Asked != "x2" || !s.Exit.Pinned || len(s.ExitMoves) != 1 || s.ExitMoves[0].To != "x2" {
		t.Fatalf("status after set-exit: exit %+v, moves %+v", s.Exit, s.ExitMoves)
	}
	if l, _ = ctl.Exits(t.Context()); !l.Exits[1].InUse || l.Exits[0].InUse {
		t.Fatalf("in use after set-exit: %+v", l.Exits)
	}
	// random: another exit, no longer pinned.
	if mv, err = ctl.SetExit(t.Context(), SetExitRequest{Exit: "random"}); err != nil || mv.To != "x1" {
		t.Fatalf("set-exit random: %+v %v", mv, err)
	}
	if s, _ = ctl.Status(t.Context()); s.Exit.Pinned || s.Exit.Asked != "random" {
		t.Fatalf("after set-exit random: %+v", s.Exit)
	}
}

// TestControlSetExitBadInput: a request that cannot be followed is refused with the reason, and
// changes nothing.
func TestControlSetExitBadInput(t *testing.T) {
	b := &fakeBuilder{}
	_, ctl, _ := listDaemon(t, b)
	for _, c := range []struct {
		req  SetExitRequest
		want string
	}{
		{SetExitRequest{}, "which exit"},
		{SetExitRequest{Exit: "country:DE"}, "relay list says nothing of countries"},
		{SetExitRequest{Exit: "r1"}, `no exit named "r1"`},
		{SetExitRequest{Exit: "nosuch"}, `no exit named "nosuch"`},
		{SetExitRequest{Exit: "x2", Port: "tcp/70000"}, "1 to 65535"},
		{SetExitRequest{Exit: "x2", Port: "sctp/80"}, "tcp/PORT"},
		{SetExitRequest{Exit: "x2", Port: "25"}, "relay list does not say"},
	} {
		_, err := ctl.SetExit(t.Context(), c.req)
		var in *InputError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set-exit %+v: %v, want an input error saying %q", c.req, err, c.want)
		}
	}
	for _, body := range []string{`{"exit": "x2", "what": 1}`, `not json`, `{"exit": "` + strings.Repeat("a", 8000) + `"}`} {
		resp, err := ctl.hc.Post("http://meshvpn"+pathExit, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("body %.40q: %s, want 400", body, resp.Status)
		}
	}
	if exitOf(t, ctl) != "x1" || b.built != 1 {
		t.Fatalf("bad requests changed the circuit: exit %s, %d builds", exitOf(t, ctl), b.built)
	}
}

// TestControlSetExitFailureKeepsTheCircuit: when no circuit to the new exit can be built, set-exit
// fails with the reason and the old circuit and choice stay.
func TestControlSetExitFailureKeepsTheCircuit(t *testing.T) {
	b := &fakeBuilder{refuse: map[keys.IdentityPublic]bool{}}
	d, ctl, es := listDaemon(t, b)
	b.mu.Lock()
	b.refuse[es[6].Identity] = true // x2
	b.mu.Unlock()
	_, err := ctl.SetExit(t.Context(), SetExitRequest{Exit: "x2"})
	var in *InputError
	if err == nil || errors.As(err, &in) || !strings.Contains(err.Error(), "x1 stays") {
		t.Fatalf("set-exit to an exit no circuit reaches: %v", err)
	}
	s := d.Status()
	if exitOf(t, ctl) != "x1" || s.Exit.Asked != "x1" || !s.Exit.Pinned || len(s.ExitMoves) != 0 || s.State != "connected" {
		t.Fatalf("after a failed set-exit: %+v, moves %+v, %s", s.Exit, s.ExitMoves, s.State)
	}
}

func TestControlSetExitWhileStarting(t *testing.T) {
	path := filepath.Join(socketDir(t), "c.sock")
	serveControl(t, path, newTestDaemon())
	ctl := dial(t, path)
	if _, err := ctl.SetExit(t.Context(), SetExitRequest{Exit: "x2"}); !errors.Is(err, ErrStarting) {
		t.Fatalf("set-exit while starting: %v", err)
	}
	if _, err := ctl.Exits(t.Context()); !errors.Is(err, ErrStarting) {
		t.Fatalf("exits while starting: %v", err)
	}
}

// testNetwork is a directory of five relays and three exits: de1 (Germany, no port 25, the best
// measured), de2 (Germany, everything), nl1 (the Netherlands, no port 25).
func testNetwork(t *testing.T) *netdir.NetDir {
	t.Helper()
	all, _ := exitports.Parse("tcp=1-65535 udp=1-65535")
	no25, _ := exitports.Parse("tcp=1-24,26-65535 udp=1-65535")
	var rs []netdir.Relay
	for i := range 8 {
		var id keys.IdentityPublic
		id[0] = byte(i + 1)
		r := netdir.Relay{Identity: id, Name: fmt.Sprintf("r%d", i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000),
			Flags: netdir.Running | netdir.Stable | netdir.Fast | netdir.Guard, Weight: 100}
		if i >= 5 {
			r.Flags = netdir.Running | netdir.Stable | netdir.Fast | netdir.Exit
			r.Name, r.Country, r.Exit, r.Weight = []string{"de1", "de2", "nl1"}[i-5], []string{"DE", "DE", "NL"}[i-5],
				[]exitports.Summary{no25, all, no25}[i-5], []uint64{1000, 10, 100}[i-5]
			r.Bandwidth = 5e6
		}
		rs = append(rs, r)
	}
	net, err := netdir.FromList(rs)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func dirDaemon(t *testing.T, cfg Config) (*Daemon, *Control) {
	t.Helper()
	cfg.StateDir = t.TempDir()
	d := newTestDaemon()
	d.cfg = cfg
	d.exitChoice = initialExitChoice(cfg)
	var err error
	if d.picker, err = newDirPicker(cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if err := d.picker.update(testNetwork(t)); err != nil {
		t.Fatal(err)
	}
	startManager(t, d, &fakeBuilder{}, d.picker, d.picker.choice.Mode == path.Named)
	path := filepath.Join(socketDir(t), "c.sock")
	serveControl(t, path, d)
	return d, dial(t, path)
}

// TestSetExitWithADirectory: exits are listed with country, bandwidth and ports; set-exit by country,
// by a port the new exit must allow, and by identity; choices no exit fits are input errors.
func TestSetExitWithADirectory(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Genesis, cfg.Exit = "/genesis", "nl1"
	_, ctl := dirDaemon(t, cfg)
	l, err := ctl.Exits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != "directory" || len(l.Exits) != 3 || l.Exits[0].Name != "de1" || l.Exits[0].Country != "DE" || l.Exits[0].Bandwidth != 5e6 ||
		l.Exits[0].Ports != "tcp=1-24,26-65535 udp=1-65535" || l.Exits[0].State != "running" || l.Exits[1].Name != "nl1" || !l.Exits[1].InUse {
		t.Fatalf("exits %+v", l)
	}
	mv, err := ctl.SetExit(t.Context(), SetExitRequest{Exit: "country:de"})
	if err != nil || (mv.To != "de1" && mv.To != "de2") {
		t.Fatalf("set-exit country:de: %+v %v", mv, err)
	}
	s, _ := ctl.Status(t.Context())
	if s.Exit.Pinned || s.Exit.Asked != "country:de" || s.Exit.Port != "tcp/443" || s.Exit.Required {
		t.Fatalf("choice after set-exit country:de: %+v", s.Exit)
	}
	// Port 25 is allowed by de2 alone.
	if mv, err = ctl.SetExit(t.Context(), SetExitRequest{Exit: "auto", Port: "tcp/25"}); err != nil || mv.To != "de2" {
		t.Fatalf("set-exit auto --port tcp/25: %+v %v", mv, err)
	}
	if s, _ = ctl.Status(t.Context()); s.Exit.Port != "tcp/25" || !s.Exit.Required {
		t.Fatalf("choice after --port: %+v", s.Exit)
	}
	id := l.Exits[1].Identity
	if mv, err = ctl.SetExit(t.Context(), SetExitRequest{Exit: id}); err != nil || mv.To != "nl1" {
		t.Fatalf("set-exit by identity: %+v %v", mv, err)
	}
	if s, _ = ctl.Status(t.Context()); !s.Exit.Pinned {
		t.Fatalf("a named exit is not pinned: %+v", s.Exit)
	}
	for _, c := range []struct {
		req  SetExitRequest
		want string
	}{
		{SetExitRequest{Exit: "country:FR"}, "no usable exit in country FR"},
		{SetExitRequest{Exit: "country:DEU"}, "two-letter"},
		{SetExitRequest{Exit: "country:"}, "nothing after the colon"},
		{SetExitRequest{Exit: "country:NL", Port: "tcp/25"}, "allows tcp/25"},
		{SetExitRequest{Exit: "r1"}, "not an exit"},
		{SetExitRequest{Exit: "bad\x01name"}, "printable"},
	} {
		_, err := ctl.SetExit(t.Context(), c.req)
		var in *InputError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set-exit %+v: %v, want an input error saying %q", c.req, err, c.want)
		}
	}
	if exitOf(t, ctl) != "nl1" {
		t.Fatalf("refused requests moved the client to %s", exitOf(t, ctl))
	}
}

// exit_port is a preference: exits that allow it are taken while there are any; when none of the
// choice does, an exit of the choice is taken all the same (a refused packet comes back as ICMP
// administratively prohibited) rather than none.
func TestExitPortIsAPreference(t *testing.T) {
	for _, c := range []struct {
		exit string
		port uint16
		want map[string]bool
	}{
		{"auto", 25, map[string]bool{"de2": true}},
		{"country:NL", 25, map[string]bool{"nl1": true}},
		{"nl1", 25, map[string]bool{"nl1": true}},
	} {
		cfg := Config{Exit: c.exit, ExitPort: c.port, StateDir: t.TempDir()}
		p, err := newDirPicker(cfg, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.update(testNetwork(t)); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			rs, err := p.Pick(nil, nil, 0)
			if err != nil {
				t.Fatalf("exit %s, exit_port %d: %v", c.exit, c.port, err)
			}
			if x := rs[len(rs)-1].Name; !c.want[x] {
				t.Fatalf("exit %s, exit_port %d: took %s, want one of %v", c.exit, c.port, x, c.want)
			}
		}
	}
	// Required (set-exit --port), the port is not given up.
	p, _ := newDirPicker(Config{Exit: "auto", StateDir: t.TempDir()}, zap.NewNop())
	p.update(testNetwork(t))
	cp := p.For(path.ExitChoice{Mode: path.Country, Value: "NL", Port: 25}, true)
	if _, err := cp.Pick(nil, nil, 0); !errors.Is(err, path.ErrNoExit) {
		t.Fatalf("required port no exit allows: %v", err)
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{"25": "tcp/25", "tcp/443": "tcp/443", "UDP/53": "udp/53", "udp/65535": "udp/65535"} {
		proto, port, err := ParsePort(in)
		if err != nil || fmt.Sprintf("%s/%d", proto, port) != want {
			t.Errorf("%q: %v/%d %v, want %s", in, proto, port, err, want)
		}
	}
	for _, in := range []string{"", "0", "tcp/", "tcp/0", "65536", "icmp/1", "tcp/-1", "tcp/ 80", "80/tcp"} {
		if _, _, err := ParsePort(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
