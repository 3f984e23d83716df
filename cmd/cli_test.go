package cmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryProgramAnswersAlike builds the five programs as `make build` does and asks each what a
// user asks first: version (with the commit, when built from a git checkout: make build stamps it
// whatever GOFLAGS says), --help (exit 0), an unknown flag (one line, exit 2) and check of a
// configuration with a misspelt key (exit 2).
func TestEveryProgramAnswersAlike(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	bin := t.TempDir()
	mk := exec.Command("make", "-s", "-C", "..", "build", "BIN="+bin)
	mk.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false") // as on a machine that turns stamping off
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	stamped := exec.Command("git", "rev-parse", "HEAD").Run() == nil
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("lgo_level = \"warn\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) (stdout, stderr string, code int) {
		var o, e bytes.Buffer
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return o.String(), e.String(), code
	}
	for _, name := range []string{"meshvpn-exit-node", "meshvpn-dht-bootstrap", "meshvpn-discovery", "meshvpn-client", "meshvpn-bootstrap"} {
		want := regexp.MustCompile(`^` + name + ` commit [0-9a-f]{12}\b.*, go1\.\d+`)
		if !stamped {
			want = regexp.MustCompile(`^` + name + ` commit unknown`)
		}
		for _, v := range []string{"version", "--version"} {
			if out, _, code := run(name, v); code != 0 || !want.MatchString(out) || strings.Count(out, "\n") != 1 {
				t.Errorf("%s %s: exit %d, %q (want %v)", name, v, code, out, want)
			}
		}
		if out, errOut, code := run(name, "--help"); code != 0 || !strings.Contains(out, name) || errOut != "" {
			t.Errorf("%s --help: exit %d, stdout %d bytes, stderr %q", name, code, len(out), errOut)
		}
		if out, errOut, code := run(name, "--bogus"); code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, name+": ") {
			t.Errorf("%s --bogus: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
		args := []string{"check", "--config", bad}
		if name == "meshvpn-bootstrap" {
			args = []string{"check", bad}
		}
		if out, errOut, code := run(name, args...); code != 2 || out != "" || !strings.Contains(errOut, bad) {
			t.Errorf("%s %v: exit %d, stdout %q, stderr %q", name, args, code, out, errOut)
		}
	}
	if out, errOut, code := run("meshvpn-dht-bootstrap", "check", "--data-dir", t.TempDir()); code != 0 || out != "configuration OK\n" {
		t.Errorf("meshvpn-dht-bootstrap check: exit %d, %q %q", code, out, errOut)
	}
}
