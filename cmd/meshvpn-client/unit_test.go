package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// unitFile is the client's systemd unit, which make install installs.
const unitFile = "../../packaging/meshvpn-client.service"

func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unitValues returns the unit's key=value lines, by key.
func unitValues(unit string) map[string][]string {
	kv := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		kv[k] = append(kv[k], v)
	}
	return kv
}

// TestServiceUnitKeepsTheKillSwitch: the unit restarts the daemon after a failure and has nothing that
// runs when it stops (ExecStop and ExecStopPost run after a crash too) and could lift the kill switch;
// it carries the hardening a network daemon should have, and its directories are the client's
// defaults.
func TestServiceUnitKeepsTheKillSwitch(t *testing.T) {
	kv := unitValues(readUnit(t))
	for _, k := range []string{"ExecStop", "ExecStopPost", "ExecReload"} {
		if len(kv[k]) > 0 {
			t.Errorf("%s=%v: whatever runs when the service stops runs after a crash too, and must not lift the kill switch", k, kv[k])
		}
	}
	want := map[string]string{
		"Restart":                 "on-failure",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW",
		"AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
		"DeviceAllow":             "/dev/net/tun rw",
		"ReadWritePaths":          "-/etc/resolv.conf",
		"StateDirectory":          filepath.Base(clientd.DefaultConfig().StateDir),
		"RuntimeDirectory":        filepath.Base(filepath.Dir(clientd.DefaultConfig().ControlSocket)),
	}
	for k, v := range want {
		if got := kv[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(clientd.DefaultConfig().StateDir, "/var/lib/") || !strings.HasPrefix(clientd.DefaultConfig().ControlSocket, "/run/") {
		t.Error("StateDirectory= and RuntimeDirectory= no longer match the defaults' places")
	}
	if s := kv["ExecStart"]; len(s) != 1 || !strings.Contains(s[0], "meshvpn-client up --foreground") {
		t.Errorf("ExecStart=%v: want the daemon in the foreground", s)
	}
}

// TestServiceUnitVerifies runs systemd-analyze verify on the unit (where systemd is installed), with
// ExecStart pointing at an executable that exists here.
func TestServiceUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meshvpn-client.service")
	text := strings.Replace(readUnit(t), "/usr/local/bin/meshvpn-client", self, 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	// It may note that this host was not booted with systemd; any word about the unit is a problem.
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "meshvpn-client.service") {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Fatalf("systemd-analyze verify (%v):\n%s", err, out)
	}
}
