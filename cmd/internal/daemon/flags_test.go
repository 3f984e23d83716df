package daemon

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type flagTestConfig struct {
	Name  string   `toml:"name"`
	Peers []string `toml:"peers"`
	Count int      `toml:"count"`
	On    bool     `toml:"on"`
	Logging
	Link LinkTimers `toml:"link"`
}

func newTestFlags(def flagTestConfig, path string) *Flags[flagTestConfig] {
	f := NewFlags("test", "usage\n", def, path, io.Discard)
	f.String("name", "", func(c *flagTestConfig) *string { return &c.Name })
	f.List("peers", "", func(c *flagTestConfig) *[]string { return &c.Peers })
	f.Int("count", "", func(c *flagTestConfig) *int { return &c.Count })
	f.Bool("on", "", func(c *flagTestConfig) *bool { return &c.On })
	f.Logging(func(c *flagTestConfig) *Logging { return &c.Logging })
	f.Link(func(c *flagTestConfig) *LinkTimers { return &c.Link })
	return f
}

// Defaults, then the file, then the flags given: a flag not given leaves the file's value, even when
// the flag's default differs from it.
func TestFlagsOverrideTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	file := "name = \"file\"\ncount = 7\nlog_level = \"info\"\npeers = [\"p1\"]\n[link]\nkeepalive_interval = \"2s\"\ndead_after = \"9s\"\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	def := flagTestConfig{Name: "def", Count: 1, Logging: Logging{LogLevel: "warn"}, Link: LinkTimers{time.Second, 3 * time.Second}}
	f := newTestFlags(def, "/nonexistent/default.toml")
	cfg, err := f.Load([]string{"--config", path, "--count", "3", "--dead-after", "12s", "--peers", "a, b,", "--on"})
	if err != nil {
		t.Fatal(err)
	}
	want := flagTestConfig{Name: "file", Count: 3, On: true, Peers: []string{"a", "b"}, Logging: Logging{LogLevel: "info"}, Link: LinkTimers{2 * time.Second, 12 * time.Second}}
	if !f.Given("count") || f.Given("name") {
		t.Fatal("Given: --count was given, --name was not")
	}
	if cfg.Name != want.Name || cfg.Count != want.Count || cfg.On != want.On || !slices.Equal(cfg.Peers, want.Peers) || cfg.Logging != want.Logging || cfg.Link != want.Link {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}

	// No file at the default path: the defaults, with the flags over them.
	cfg, err = newTestFlags(def, filepath.Join(dir, "missing.toml")).Load([]string{"--name", "flag"})
	if err != nil || cfg.Name != "flag" || cfg.Count != 1 || cfg.LogLevel != "warn" {
		t.Fatalf("without a file: %+v %v", cfg, err)
	}
	// A file named on the command line must exist; stray arguments and --help are told apart.
	if _, err := newTestFlags(def, "").Load([]string{"--config", filepath.Join(dir, "missing.toml")}); err == nil {
		t.Fatal("a missing --config file was accepted")
	}
	if _, err := newTestFlags(def, "").Load([]string{"stray"}); err == nil || !strings.Contains(err.Error(), `unexpected argument "stray"`) {
		t.Fatalf("stray argument: %v", err)
	}
	if _, err := newTestFlags(def, "").Load([]string{"--help"}); !IsHelp(err) {
		t.Fatalf("--help: %v", err)
	}
}

func TestSectionsValidate(t *testing.T) {
	if err := (LinkTimers{time.Second, time.Second}).Validate("link"); err == nil || !strings.Contains(err.Error(), "link: want 0 < keepalive_interval") {
		t.Fatalf("dead_after = keepalive_interval: %v", err)
	}
	if errs := (Logging{LogLevel: "loud", Metrics: "0.0.0.0:9"}).Validate(false); len(errs) != 2 {
		t.Fatalf("a bad level and a public metrics address: %v", errs)
	}
	if errs := (Logging{LogLevel: "info", Metrics: "127.0.0.1:9"}).Validate(false); len(errs) != 0 {
		t.Fatalf("good logging section: %v", errs)
	}
}
