package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/dhtboot"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dht-bootstrap.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFlagsOverrideTheConfigFile(t *testing.T) {
	path := writeConfig(t, `
data_dir = "/srv/dht"
public_ip = "198.51.100.1"
[dht]
listen = "0.0.0.0:7881"
bootstrap = ["198.51.100.2:6881"]
[stun]
rate = 50
`)
	cfg, err := loadConfig([]string{"--config", path, "--bootstrap", "198.51.100.3:6881, 198.51.100.4:6881", "--stun-listen", "", "--log-level", "info"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	def := dhtboot.DefaultConfig()
	if cfg.DataDir != "/srv/dht" || cfg.PublicIP != "198.51.100.1" || cfg.DHT.Listen != "0.0.0.0:7881" || cfg.STUN.Rate != 50 {
		t.Errorf("the file's values were lost: %+v", cfg)
	}
	if !slices.Equal(cfg.DHT.Bootstrap, []string{"198.51.100.3:6881", "198.51.100.4:6881"}) || cfg.STUN.Listen != "" || cfg.LogLevel != "info" {
		t.Errorf("the flags did not override the file: %+v", cfg)
	}
	if cfg.Metrics != def.Metrics {
		t.Errorf("a key in neither lost its default: %+v", cfg)
	}
	cfg, err = loadConfig([]string{"--config", path, "--bootstrap", ""}, os.Stderr)
	if err != nil || len(cfg.DHT.Bootstrap) != 0 {
		t.Errorf("--bootstrap \"\" makes a first node: %v, %v", cfg.DHT.Bootstrap, err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := loadConfig([]string{"--config", writeConfig(t, "[stun]\nlisten = \"x\"\nrat = 1\n")}, os.Stderr); err == nil || !strings.Contains(err.Error(), "stun.rat") {
		t.Errorf("a misspelt key: %v", err)
	}
	if _, err := loadConfig([]string{"--config", filepath.Join(t.TempDir(), "missing.toml")}, os.Stderr); err == nil {
		t.Error("a --config that does not exist was accepted")
	}
	_, err := loadConfig([]string{"--config", writeConfig(t, ""), "--dht-listen", "nowhere", "--stun-rate", "-1", "--bootstrap", "a:b"}, os.Stderr)
	for _, want := range []string{"dht.listen", "stun.rate", "dht.bootstrap[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("flag errors do not mention %s: %v", want, err)
		}
	}
	if _, err := loadConfig([]string{"--config", writeConfig(t, ""), "extra"}, os.Stderr); err == nil {
		t.Error("an extra argument was accepted")
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := loadConfig([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage:", "info", "example-config", "-dht-listen", "-stun-listen", "-bootstrap", dhtboot.DefaultConfigPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %q:\n%s", want, out.String())
		}
	}
}

func TestInfo(t *testing.T) {
	cfg, err := loadConfig([]string{"--config", writeConfig(t, ""), "--public-ip", "198.51.100.1"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := info(cfg, &out); err != nil {
		t.Fatal(err)
	}
	if want := "bootstrap 198.51.100.1:6881\nstun 198.51.100.1:3478\n"; out.String() != want {
		t.Errorf("info printed %q, want %q", out.String(), want)
	}
	cfg.PublicIP = ""
	if err := info(cfg, &out); err == nil || !strings.Contains(err.Error(), "public_ip") {
		t.Errorf("info for a wildcard address without public_ip: %v", err)
	}
}
