package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestCommandLineAnswersAlike: --help on stdout with 0, a bad flag in one line with 2, check of a
// genesis file "configuration OK" or its errors with 2, as in every MeshVPN program.
func TestCommandLineAnswersAlike(t *testing.T) {
	var out, errOut bytes.Buffer
	run := func(f func() int) int { out.Reset(); errOut.Reset(); return f() }
	newFS := func() *flag.FlagSet { return testnetFlags(flag.NewFlagSet("testnet", flag.ContinueOnError)) }

	if code := run(func() int { c, _ := parseFlags(newFS(), []string{"--help"}, usage, &out, &errOut); return c }); code != 0 ||
		!strings.HasPrefix(out.String(), usage) || !strings.Contains(out.String(), "-relays") || errOut.Len() != 0 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if code := run(func() int { c, _ := parseFlags(newFS(), []string{"--bogus"}, usage, &out, &errOut); return c }); code != 2 ||
		errOut.String() != "meshvpn-bootstrap testnet: flag provided but not defined: -bogus (see testnet --help)\n" || out.Len() != 0 {
		t.Errorf("--bogus: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if _, ok := parseFlags(newFS(), []string{"--relays", "7"}, usage, &out, &errOut); !ok || opts.relays != 7 {
		t.Errorf("good flags: %v, relays %d", ok, opts.relays)
	}

	dir := t.TempDir()
	g, err := genesisFrom("demo", authorities(t, 3), 0, []string{"10.0.0.9:6881"}, []string{"10.0.0.9:3478"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := writeNetwork(g, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("threshold 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run(func() int { return runCheck([]string{good}, &out, &errOut) }); code != 0 || out.String() != "configuration OK\n" {
		t.Errorf("check of a good genesis: exit %d, %q %q", code, out.String(), errOut.String())
	}
	for _, args := range [][]string{{bad}, {filepath.Join(dir, "missing")}, {}, {"--bogus"}} {
		if code := run(func() int { return runCheck(args, &out, &errOut) }); code != 2 || out.Len() != 0 ||
			!strings.HasPrefix(errOut.String(), "meshvpn-bootstrap check: ") {
			t.Errorf("check %v: exit %d, stdout %q, stderr %q", args, code, out.String(), errOut.String())
		}
	}
}

// authorities returns n init --authority values with new keys.
func authorities(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		id, err := keys.GenerateIdentity(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s@http://10.0.0.%d:8080,auth%d", id.Public(), i+1, i+1))
	}
	return out
}
