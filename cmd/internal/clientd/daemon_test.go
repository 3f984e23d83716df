package clientd

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func relayEntry(t *testing.T, i int, exit bool) netdir.Relay {
	t.Helper()
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	r := netdir.Relay{Name: fmt.Sprintf("r%d", i), Flags: netdir.Running,
		Identity: id.Public(), LinkKey: lk.Public(), Onion: ok.Public(),
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}), 7000),
	}
	if exit {
		r.Flags |= netdir.Exit
		r.Exit, _ = exitports.Parse("tcp=1-65535 udp=1-65535")
	}
	return r
}

// relayFile writes a relay list of the given relays (true: an exit) and returns its path.
func relayFile(t *testing.T, dir string, exits ...bool) string {
	t.Helper()
	var es []netdir.Relay
	for i, exit := range exits {
		es = append(es, relayEntry(t, i+1, exit))
	}
	text, err := relaylist.Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "relays.toml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startConfig is a valid config that keeps to dir and loopback. Start must fail before it gets to the
// TUN device; the name and the absent routes limit the harm should it not.
func startConfig(dir string) Config {
	c := DefaultConfig()
	c.Relays = filepath.Join(dir, "relays.toml")
	c.ControlSocket = filepath.Join(dir, "run", "c.sock")
	c.Listen = "127.0.0.1:0"
	c.Metrics = ""
	c.LogFile = filepath.Join(dir, "log")
	c.TUN.Name = "mvtest0"
	c.TUN.RouteAll = false
	c.KillSwitch = false // the tests run in the host's own namespace
	// Nor may they touch the host's resolv.conf (or keep a backup outside the test's directory).
	c.DNS.ResolvConf, c.StateDir = filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "state")
	return c
}

// checkNothingCreated fails if Start left the control socket (or even its directory) behind.
func checkNothingCreated(t *testing.T, cfg Config) {
	t.Helper()
	if _, err := os.Lstat(filepath.Dir(cfg.ControlSocket)); !os.IsNotExist(err) {
		t.Errorf("the failed Start created %s (%v)", filepath.Dir(cfg.ControlSocket), err)
	}
}

func TestStartBadRelayList(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, dir string)
		exit  string
		want  string
	}{
		{"missing", func(*testing.T, string) {}, "", "no such file"},
		{"garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "relays.toml"), []byte("[[relay]\nname = r1\n"), 0o600)
		}, "", "relay list"},
		{"empty", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "relays.toml"), nil, 0o600)
		}, "", "0 relays"},
		{"two relays", func(t *testing.T, dir string) { relayFile(t, dir, false, true) }, "", "2 relays"},
		{"no exit", func(t *testing.T, dir string) { relayFile(t, dir, false, false, false) }, "", "no exit"},
		{"unknown exit", func(t *testing.T, dir string) { relayFile(t, dir, false, false, true) }, "r9", `no exit named "r9"`},
		{"named relay is no exit", func(t *testing.T, dir string) { relayFile(t, dir, false, false, true) }, "r1", `no exit named "r1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := socketDir(t)
			tc.write(t, dir)
			cfg := startConfig(dir)
			cfg.Exit = tc.exit
			d, err := Start(t.Context(), cfg, zap.NewNop())
			if err == nil {
				d.Close()
				t.Fatal("Start accepted a bad relay list")
			}
			if !strings.Contains(err.Error(), cfg.Relays) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one naming %s and saying %q", err, cfg.Relays, tc.want)
			}
			checkNothingCreated(t, cfg)
		})
	}
}

func TestStartInvalidConfig(t *testing.T) {
	dir := socketDir(t)
	relayFile(t, dir, false, false, true)
	cfg := startConfig(dir)
	cfg.TUN.MTU, cfg.LogLevel = 1, "loud"
	_, err := Start(t.Context(), cfg, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "tun.mtu") || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("Start with an invalid config: %v", err)
	}
	checkNothingCreated(t, cfg)
}

func TestStartRefusesSecondDaemon(t *testing.T) {
	dir := socketDir(t)
	relayFile(t, dir, false, false, true)
	cfg := startConfig(dir)
	first := newTestDaemon()
	first.ready.Store(true)
	serveControl(t, cfg.ControlSocket, first)
	_, err := Start(t.Context(), cfg, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("Start beside a running daemon: %v", err)
	}
	if _, err := dial(t, cfg.ControlSocket).Status(t.Context()); err != nil {
		t.Fatalf("the running daemon lost its control socket: %v", err)
	}
}

// TestStartCleansUpOnError makes Start fail after it has opened the control socket (its UDP port is
// taken) but before the TUN device: Close must remove the socket again.
func TestStartCleansUpOnError(t *testing.T) {
	dir := socketDir(t)
	relayFile(t, dir, false, false, true)
	taken, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := startConfig(dir)
	cfg.Listen = taken.LocalAddr().String()
	_, err = Start(t.Context(), cfg, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "listen "+cfg.Listen) {
		t.Fatalf("Start with its port taken: %v", err)
	}
	if _, err := os.Lstat(cfg.ControlSocket); !os.IsNotExist(err) {
		t.Fatalf("the failed Start left its control socket: %v", err)
	}
}
