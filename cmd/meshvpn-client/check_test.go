package main

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestCheckAndExitCodes: check reads the configuration and the genesis file it names without
// starting, and says "configuration OK" or why not with exit code 2, as a bad flag, a bad setting and
// an unknown command do (as in every MeshVPN program).
func TestCheckAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := &genesis.Genesis{Name: "test", Threshold: 1, Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:6881")},
		Authorities: []genesis.Authority{{Identity: id.Public(), URL: "http://192.0.2.2:8080/"}}}
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	text, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	good, bad := filepath.Join(dir, "genesis"), filepath.Join(dir, "bad-genesis")
	if err := os.WriteFile(good, text, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("network\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noConfig := filepath.Join(dir, "none.toml")
	var out bytes.Buffer
	if err := check([]string{"--config", writeCheckFile(t, dir, "c.toml", ""), "--genesis", good}, &out); err != nil || out.String() != "configuration OK\n" {
		t.Fatalf("a good configuration: %v, %q", err, out.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--genesis", bad}, bad},
		{[]string{"--genesis", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"--genesis", good, "--tun", ""}, "tun.name"},
		{[]string{"--config", noConfig}, noConfig},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus (see --help)"},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		out.Reset()
		err := check(tc.args, &out)
		if err == nil || exitCode(err) != daemon.ExitUsage || !strings.Contains(err.Error(), tc.want) || out.Len() != 0 {
			t.Errorf("check %v: %v (exit %d), printed %q; want exit 2 naming %q", tc.args, err, exitCode(err), out.String(), tc.want)
		}
	}
	if err := unknownCommand("--bogus"); exitCode(err) != daemon.ExitUsage || strings.Contains(err.Error(), "\n") {
		t.Errorf("an unknown command: %v, exit %d", err, exitCode(err))
	}
	if _, _, err := parse([]string{"--bogus"}); exitCode(err) != daemon.ExitUsage {
		t.Errorf("a bad flag of up, status, down: exit %d", exitCode(err))
	}
}

func writeCheckFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHowItEndedSaysNoNil: a background daemon that exited 0 (or died by a signal) is described in
// words, not as "(<nil>)".
func TestHowItEndedSaysNoNil(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"true"}, "with exit code 0"},
		{[]string{"sh", "-c", "exit 2"}, "with exit code 2"},
		{[]string{"sh", "-c", "kill -9 $$"}, "killed by signal 9 (killed)"},
	} {
		got := howItEnded(exec.Command(tc.cmd[0], tc.cmd[1:]...).Run())
		if !strings.HasPrefix(got, tc.want) || strings.Contains(got, "nil") {
			t.Errorf("%v: %q, want %q…", tc.cmd, got, tc.want)
		}
	}
}
