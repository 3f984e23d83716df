package daemon

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testConfig struct {
	Name  string `toml:"name"`
	Count int    `toml:"count"`
	Tun   struct {
		Name string `toml:"name"`
		MTU  int    `toml:"mtu"`
	} `toml:"tun"`
}

func defaults() testConfig {
	var c testConfig
	c.Name, c.Count, c.Tun.Name, c.Tun.MTU = "default", 7, "mvpn0", 1400
	return c
}

func TestDecodeConfigListsEveryUnknownKey(t *testing.T) {
	c := defaults()
	err := DecodeConfig("test.toml", []byte(`
name = "set"
colour = "red"
[tun]
nmae = "typo"
mtu = 1300
[extra]
deep = 1
`), &c)
	if err == nil {
		t.Fatal("unknown keys were accepted")
	}
	for _, want := range []string{"test.toml", "unknown keys", "colour", "tun.nmae", "extra.deep"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	for _, known := range []string{"tun.mtu", "tun.name", ", name"} {
		if strings.Contains(err.Error(), known) {
			t.Errorf("error lists the known key %q: %v", known, err)
		}
	}
}

func TestDecodeConfig(t *testing.T) {
	c := defaults()
	if err := DecodeConfig("test.toml", []byte("name = \"set\"\n[tun]\nmtu = 1300\n"), &c); err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.Name, want.Tun.MTU = "set", 1300
	if c != want {
		t.Fatalf("decoded %+v, want %+v (keys absent from the file keep their defaults)", c, want)
	}
	if err := DecodeConfig("broken.toml", []byte("name = \n"), &c); err == nil || !strings.Contains(err.Error(), "broken.toml") {
		t.Fatalf("a syntax error: %v", err)
	}
	if err := DecodeConfig("typed.toml", []byte("count = \"seven\"\n"), &c); err == nil || !strings.Contains(err.Error(), "typed.toml") {
		t.Fatalf("a wrongly typed value: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")

	t.Run("missing optional keeps defaults", func(t *testing.T) {
		c := defaults()
		if err := LoadConfig(missing, &c, true); err != nil {
			t.Fatal(err)
		}
		if c != defaults() {
			t.Fatalf("defaults changed: %+v", c)
		}
	})
	t.Run("missing required", func(t *testing.T) {
		c := defaults()
		err := LoadConfig(missing, &c, false)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("got %v, want a not-exist error naming %s", err, missing)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte("count = 9\n[tun]\nname = \"x0\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := defaults()
		if err := LoadConfig(path, &c, true); err != nil {
			t.Fatal(err)
		}
		want := defaults()
		want.Count, want.Tun.Name = 9, "x0"
		if c != want {
			t.Fatalf("got %+v, want %+v", c, want)
		}
	})
	t.Run("unknown key in a file", func(t *testing.T) {
		path := filepath.Join(dir, "typo.toml")
		if err := os.WriteFile(path, []byte("[tun]\nnmae = \"x0\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := defaults()
		if err := LoadConfig(path, &c, true); err == nil || !strings.Contains(err.Error(), "tun.nmae") || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		for _, optional := range []bool{false, true} {
			c := defaults()
			err := LoadConfig(dir, &c, optional)
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), dir) {
				t.Fatalf("optional=%v: got %v, want a not-a-regular-file error naming the path", optional, err)
			}
		}
	})
	t.Run("size limit", func(t *testing.T) {
		path := filepath.Join(dir, "big.toml")
		// Blank lines are valid TOML: a file of exactly the limit is read, one byte more is not.
		if err := os.WriteFile(path, []byte(strings.Repeat("\n", maxConfigSize)), 0o600); err != nil {
			t.Fatal(err)
		}
		c := defaults()
		if err := LoadConfig(path, &c, false); err != nil {
			t.Fatalf("a file of exactly %d bytes: %v", maxConfigSize, err)
		}
		if err := os.WriteFile(path, []byte(strings.Repeat("\n", maxConfigSize+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, optional := range []bool{false, true} {
			err := LoadConfig(path, &c, optional)
			if err == nil || !strings.Contains(err.Error(), "more than") || !strings.Contains(err.Error(), path) {
				t.Fatalf("optional=%v: a file over the limit: %v", optional, err)
			}
		}
	})
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Fatalf("NewLogger(loud): %v", err)
	}
	for level, enabled := range map[string]zapcore.Level{"": zapcore.WarnLevel, "debug": zapcore.DebugLevel, "info": zapcore.InfoLevel, "error": zapcore.ErrorLevel} {
		log, err := NewLogger(level)
		if err != nil {
			t.Fatalf("NewLogger(%q): %v", level, err)
		}
		if !log.Core().Enabled(enabled) || (enabled > zapcore.DebugLevel && log.Core().Enabled(enabled-1)) {
			t.Errorf("NewLogger(%q): lowest level enabled is not %v", level, enabled)
		}
	}
}

// testCollector is one labelled counter and one gauge.
type testCollector struct{ counter, gauge *prometheus.Desc }

func newTestCollector() *testCollector {
	return &testCollector{
		prometheus.NewDesc("meshvpn_test_things_total", "Things.", []string{"kind"}, nil),
		prometheus.NewDesc("meshvpn_test_level", "A level.", nil, nil),
	}
}

func (c *testCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.counter; ch <- c.gauge }
func (c *testCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- Counter(c.counter, 42, "good")
	ch <- Counter(c.counter, 1, "bad")
	ch <- Gauge(c.gauge, 0.5)
}

func TestServeMetricsRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.0.0.1:0", "[::]:0", ":0", "example.com:0", "127.0.0.1"} {
		if m, err := ServeMetrics(addr, false, zap.NewNop()); err == nil {
			m.Close()
			t.Errorf("ServeMetrics(%q) was accepted", addr)
		}
	}
	// public lifts the loopback rule only; the check is made before anything listens.
	if err := CheckMetricsAddr("0.0.0.0:9311", true); err != nil {
		t.Errorf("public: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.9:9311"} {
		if err := CheckMetricsAddr(addr, false); err != nil {
			t.Errorf("CheckMetricsAddr(%q): %v", addr, err)
		}
	}
}

func TestServeMetricsRejectsDuplicateCollector(t *testing.T) {
	c := newTestCollector()
	if m, err := ServeMetrics("127.0.0.1:0", false, zap.NewNop(), c, c); err == nil {
		m.Close()
		t.Fatal("a collector registered twice was accepted")
	}
}

func TestServeMetrics(t *testing.T) {
	m, err := ServeMetrics("127.0.0.1:0", false, zap.NewNop(), newTestCollector())
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + m.Addr().String() + "/metrics"
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	for _, want := range []string{
		`meshvpn_test_things_total{kind="good"} 42`,
		`meshvpn_test_things_total{kind="bad"} 1`,
		"# TYPE meshvpn_test_level gauge\nmeshvpn_test_level 0.5",
		"go_goroutines", "process_",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp, err := hc.Get("http://" + m.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /: %s, want 404", resp.Status)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("the server still answers after Close")
	}
	goleak.VerifyNone(t)
}
