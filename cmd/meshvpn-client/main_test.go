package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseFlagsOverFileOverDefaults(t *testing.T) {
	path := writeConfig(t, `
exit = "file-exit"
listen = "127.0.0.1:5000"
metrics = "127.0.0.1:9999"
relays = "/file/relays.toml"
[tun]
name = "filetun"
route_all = true
[link]
keepalive_interval = "5s"
`)
	cfg, o, err := parse([]string{
		"--config", path, "--exit", "flag-exit", "--keepalive", "7s", "--metrics", "",
		"--relays", clientd.DefaultConfig().Relays, // a flag equal to its default still overrides the file
		"--json", "--timeout", "3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := clientd.DefaultConfig()
	want.Exit = "flag-exit"                       // flag over file
	want.Listen = "127.0.0.1:5000"                // file over default
	want.TUN.Name = "filetun"                     // file over default
	want.Metrics = ""                             // an empty flag turns them off
	want.Link.KeepaliveInterval = 7 * time.Second // flag over file
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("parse:\n got %+v\nwant %+v", cfg, want)
	}
	if !o.json || o.timeout != 3*time.Second || o.foreground || o.config != path {
		t.Fatalf("options %+v", o)
	}
}

func TestParseEveryFlag(t *testing.T) {
	cfg, o, err := parse([]string{
		"--config", writeConfig(t, ""), "--relays", "/r.toml", "--exit", "x1", "--listen", "127.0.0.1:1",
		"--control-socket", "/run/x.sock", "--metrics", "127.0.0.1:2", "--log-level", "debug", "--log-file", "/l.log",
		"--tun", "t0", "--tun-backend", "water", "--no-routes", "--keepalive", "1s", "--dead-after", "2s", "--foreground",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := clientd.DefaultConfig()
	want.Relays, want.Exit, want.Listen, want.ControlSocket = "/r.toml", "x1", "127.0.0.1:1", "/run/x.sock"
	want.Metrics, want.LogLevel, want.LogFile = "127.0.0.1:2", "debug", "/l.log"
	want.TUN.Name, want.TUN.Backend, want.TUN.RouteAll = "t0", "water", false
	want.Link.KeepaliveInterval, want.Link.DeadAfter = time.Second, 2*time.Second
	if !reflect.DeepEqual(cfg, want) || !o.foreground {
		t.Fatalf("parse:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseRoutes(t *testing.T) {
	on := writeConfig(t, "[tun]\nroute_all = true\n")
	off := writeConfig(t, "[tun]\nroute_all = false\n")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--config", on}, true},
		{[]string{"--config", on, "--no-routes"}, false},
		{[]string{"--config", off}, false},
		{[]string{"--config", off, "--no-routes=false"}, false}, // the flag only turns routes off
	} {
		cfg, _, err := parse(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TUN.RouteAll != tc.want {
			t.Errorf("%v: route_all %v, want %v", tc.args, cfg.TUN.RouteAll, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	typo := writeConfig(t, "[tun]\nnmae = \"x\"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "bogus"},
		{[]string{"--config", typo, "extra"}, `unexpected argument "extra"`},
		{[]string{"--config", typo}, "tun.nmae"},
		{[]string{"--config", missing}, missing},
		{[]string{"--config", dir}, "not a regular file"},
		{[]string{"--keepalive", "soon"}, "keepalive"},
	} {
		_, _, err := parse(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q): %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := parse([]string{"--config", missing}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing --config: %v, want fs.ErrNotExist", err)
	}
}

func TestParseDefaultConfigMayBeMissing(t *testing.T) {
	if _, err := os.Stat(clientd.DefaultConfigPath); !errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s exists here (%v)", clientd.DefaultConfigPath, err)
	}
	cfg, _, err := parse(nil)
	if err != nil {
		t.Fatalf("without %s: %v", clientd.DefaultConfigPath, err)
	}
	if !reflect.DeepEqual(cfg, clientd.DefaultConfig()) {
		t.Fatalf("got %+v, want the defaults", cfg)
	}
	if _, _, err := parse([]string{"--config", clientd.DefaultConfigPath}); err == nil {
		t.Fatal("--config naming the missing default path was accepted")
	}
}

func sampleStatus() clientd.Status {
	died := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	return clientd.Status{
		State: "connected", PID: 42, UptimeSec: 3725.4, TUN: "mvpn0", MTU: 1360,
		Circuit: clientd.Circuit{Hops: []clientd.Hop{
			{Role: "guard", Name: "g-ams", Address: "198.51.100.1:7000", Identity: "AAAABBBBCCCCDDDDEEEE"},
			{Role: "middle", Name: "m-fra", Address: "198.51.100.2:7000", Identity: "short"},
			{Role: "exit", Name: "x-par", Address: "[2001:db8::3]:7000", Identity: ""},
		}},
		Traffic: clientd.Traffic{PacketsOut: 3, PacketsIn: 5, BytesOut: 1536, BytesIn: 3 << 20},
		Drops:   map[string]uint64{"ipv6": 2, "too_big": 0},
		Reroutes: []clientd.Reroute{
			{Died: died, GapMillis: 4.4, OutageMillis: 27304, Why: "link dead", Path: []string{"g-ams", "m-ber", "x-par"}, SameSession: true},
			{Died: died.Add(time.Minute), GapMillis: 412, OutageMillis: 412, Why: "exit gone", Path: []string{"g-ams", "m-fra", "x-lon"}},
		},
	}
}

func TestPrintStatus(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, sampleStatus())
	out := b.String()
	for _, want := range []string{
		"MeshVPN: connected (up 1h2m5s, TUN mvpn0, MTU 1360)",
		"guard  g-ams", "198.51.100.1:7000", "AAAABBBBCCCC…",
		"middle m-fra", "short…",
		"exit   x-par", "[2001:db8::3]:7000",
		"traffic: 1.5 KiB out (3 packets), 3.0 MiB in (5 packets)",
		"not carried: ipv6 2",
		"rerouted 15:04:05: link dead; 27.3 s without traffic (the rebuild took 4 ms); now g-ams → m-ber → x-par; the exit kept the session",
		"rerouted 15:05:05: exit gone; 412 ms without traffic (the rebuild took 412 ms); now g-ams → m-fra → x-lon; new exit session: open connections were lost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"too_big", "DDDD"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("status shows %q:\n%s", unwanted, out)
		}
	}
	if strings.Index(out, "guard") > strings.Index(out, "middle") || strings.Index(out, "middle") > strings.Index(out, "exit  ") {
		t.Errorf("hops out of order:\n%s", out)
	}
}

// A silent circuit says so, and where; not "connected".
func TestPrintStatusSilent(t *testing.T) {
	s := sampleStatus()
	s.State, s.Silent = "silent", &clientd.Silence{Seconds: 12.2, Hop: "middle", HopName: "m-fra"}
	var b bytes.Buffer
	printStatus(&b, s)
	if out := b.String(); !strings.Contains(out, "MeshVPN: silent") || !strings.Contains(out, "no traffic back through the circuit for 12 s while sending: no answer from the middle (m-fra)") {
		t.Fatalf("status:\n%s", out)
	}
	s.Silent.Hop = ""
	b.Reset()
	printStatus(&b, s)
	if out := b.String(); !strings.Contains(out, "every hop answers a probe: what is silent lies beyond the exit") {
		t.Fatalf("status:\n%s", out)
	}
}

func TestPrintStatusNoCircuit(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, clientd.Status{State: "rebuilding", TUN: "mvpn0"})
	if out := b.String(); !strings.Contains(out, "MeshVPN: rebuilding") || !strings.Contains(out, "traffic: 0 B out (0 packets), 0 B in") ||
		strings.Contains(out, "rerouted") || strings.Contains(out, "not carried") {
		t.Fatalf("status:\n%s", out)
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[uint64]string{
		0:             "0 B",
		1023:          "1023 B",
		1 << 10:       "1.0 KiB",
		1536:          "1.5 KiB",
		1 << 20:       "1.0 MiB",
		5<<20 + 1<<19: "5.5 MiB",
		1 << 30:       "1.00 GiB",
		3 << 40:       "3072.00 GiB",
		^uint64(0):    "17179869184.00 GiB",
	} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
}

// Without --config or --control-socket, status and down ask the daemon that noted its socket when
// none is at the configured one; given either, they ask where they are told.
func TestControlSocketFindsTheRunningDaemon(t *testing.T) {
	old := clientd.RunningFile
	clientd.RunningFile = filepath.Join(t.TempDir(), "client.running")
	defer func() { clientd.RunningFile = old }()
	cfg := clientd.DefaultConfig()
	cfg.ControlSocket = filepath.Join(t.TempDir(), "none.sock")
	if got := controlSocket(cfg, options{}); got != cfg.ControlSocket {
		t.Fatalf("no daemon noted: %q", got)
	}
	note := fmt.Sprintf(`{"pid": %d, "control_socket": "/tmp/up-with-config.sock"}`, os.Getpid())
	if err := os.WriteFile(clientd.RunningFile, []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := controlSocket(cfg, options{}); got != "/tmp/up-with-config.sock" {
		t.Fatalf("with a running daemon's note: %q", got)
	}
	if got := controlSocket(cfg, options{located: true}); got != cfg.ControlSocket {
		t.Fatalf("--control-socket given: %q", got)
	}
}

// Status without a daemon is a state, in text and in JSON.
func TestPrintNotRunning(t *testing.T) {
	var b bytes.Buffer
	printNotRunning(&b, clientd.Status{State: "not running"}, false)
	if !strings.Contains(b.String(), "MeshVPN: not running") {
		t.Fatalf("text: %q", b.String())
	}
	b.Reset()
	printNotRunning(&b, clientd.Status{State: "not running", KillSwitch: &clientd.KillSwitchStatus{Armed: true, Blocked: 4}}, true)
	var s clientd.Status
	if err := json.Unmarshal(b.Bytes(), &s); err != nil || s.State != "not running" || s.KillSwitch == nil || s.KillSwitch.Blocked != 4 {
		t.Fatalf("JSON %q: %v", b.String(), err)
	}
}

func TestPrintDirectory(t *testing.T) {
	var b bytes.Buffer
	printDirectory(&b, clientd.DirectoryView{Source: "daemon", Authorities: []string{"a", "b"}, Relays: []clientd.RelayView{
		{Name: "r1", Address: "10.240.0.11:7000", Flags: "Running|Guard", Weight: 100, Identity: "AAAA"},
		{Name: "x1", Address: "10.240.0.21:7000", Flags: "Running|Exit", Weight: 50, Ports: "tcp=80,443 udp=none", IPv6: true, Country: "DE", Identity: "BBBB",
			Rendezvous: []string{"10.240.0.13:7000"}},
	}})
	out := b.String()
	for _, want := range []string{"directory: 2 relays, agreed by 2 authorities, the running client's", "r1", "Running|Guard", "x1",
		"10.240.0.21:7000 via 10.240.0.13:7000", "tcp=80,443 udp=none +IPv6", "DE", "not identities"} {
		if !strings.Contains(out, want) {
			t.Errorf("directory lacks %q:\n%s", want, out)
		}
	}
}
