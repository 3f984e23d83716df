package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/discovery"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestFlagsOverrideTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "discovery.toml")
	file := "genesis = \"/srv/genesis\"\nperiod = \"5m\"\n[http]\nlisten = \"127.0.0.1:8081\"\n[flags]\nstable_age = \"2h\"\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig([]string{"--config", path, "--period", "2m", "--data-dir", dir, "--probe-timeout", "3s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	def := discovery.DefaultConfig()
	if cfg.Period != 2*time.Minute || cfg.DataDir != dir || cfg.Probe.Timeout != 3*time.Second {
		t.Errorf("flags not applied: period %v, data_dir %q, probe timeout %v", cfg.Period, cfg.DataDir, cfg.Probe.Timeout)
	}
	if cfg.Genesis != "/srv/genesis" || cfg.HTTP.Listen != "127.0.0.1:8081" || cfg.Flags.StableAge != 2*time.Hour {
		t.Errorf("file not applied: genesis %q, http %q, stable_age %v", cfg.Genesis, cfg.HTTP.Listen, cfg.Flags.StableAge)
	}
	if cfg.DHT.Listen != def.DHT.Listen || cfg.Probe.Burst != def.Probe.Burst {
		t.Errorf("defaults lost: dht %q, burst %d", cfg.DHT.Listen, cfg.Probe.Burst)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.toml")
	os.WriteFile(typo, []byte("perod = \"5m\"\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, "missing.toml"},
		{[]string{"--config", typo}, "perod"},
		{[]string{"--config", filepath.Join(dir, "missing.toml"), "--period", "0s"}, "missing.toml"},
		{[]string{"--config", typo + "x", "extra"}, "unexpected argument"},
		{[]string{"--period", "soon"}, "soon"},
	} {
		if _, err := loadConfig(tc.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadConfig(%q): %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
	// Without --config, a missing default file is fine, and the flags are validated.
	if _, err := loadConfig([]string{"--period", "0s", "--data-dir", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "period") {
		t.Errorf("a zero period: %v", err)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := loadConfig([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage:", "meshvpn-discovery info", "/v1/directory", "-period", "-genesis", discovery.DefaultConfigPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

func TestInfoNeedsNoGenesis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := loadConfig([]string{"--data-dir", dir, "--genesis", filepath.Join(dir, "none")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out1, out2 bytes.Buffer
	if err := info(cfg, &out1); err != nil {
		t.Fatal(err)
	}
	if err := info(cfg, &out2); err != nil {
		t.Fatal(err)
	}
	if out1.String() != out2.String() {
		t.Fatalf("info printed %q, then %q", out1.String(), out2.String())
	}
	if _, err := keys.ParseIdentityPublic(strings.TrimSuffix(out1.String(), "\n")); err != nil {
		t.Fatalf("info printed %q: %v", out1.String(), err)
	}
	st, err := os.Stat(filepath.Join(dir, discovery.IdentityFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity key file: %v %v", st, err)
	}
}
