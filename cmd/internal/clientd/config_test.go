package clientd

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/network/tun"
)

func TestExampleConfigIsValid(t *testing.T) {
	var c Config
	if err := daemon.DecodeConfig("example.toml", []byte(ExampleConfig), &c); err != nil {
		t.Fatal(err)
	}
	if c.Relays == "" {
		t.Fatal("the example names no relay list")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("DefaultConfig differs from the example:\n%+v\n%+v", DefaultConfig(), c)
	}
	if c.mtu() != DefaultMTU || DefaultMTU < tun.MinMTU || DefaultMTU > tun.MaxMTU {
		t.Fatalf("mtu %d, DefaultMTU %d (TUN range %d to %d)", c.mtu(), DefaultMTU, tun.MinMTU, tun.MaxMTU)
	}
}

// TestExampleDocumentsEveryKey keeps example.toml the whole reference: every field of Config has its
// key there (commented out when it has no default).
func TestExampleDocumentsEveryKey(t *testing.T) {
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			if f.Anonymous { // an embedded section (daemon.Logging): its keys are the table's own
				walk(prefix, f.Type)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				if !strings.Contains(ExampleConfig, "\n["+key+"]\n") {
					t.Errorf("example.toml has no [%s] table", key)
				}
				walk(key+".", f.Type)
				continue
			}
			if !strings.Contains(ExampleConfig, "\n"+key+" = ") && !strings.Contains(ExampleConfig, "\n#"+key+" = ") {
				t.Errorf("example.toml does not document %s%s", prefix, key)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Relays = ""
	c.ControlSocket = "run/meshvpn/client.sock"
	c.Listen = "0.0.0.0"
	c.TUN.Address = "fd00::2/128"
	c.TUN.MTU = DefaultMTU + 1
	c.TUN.Backend = "tap"
	c.Link.KeepaliveInterval, c.Link.DeadAfter = 30*time.Second, 10*time.Second
	c.LogLevel = "loud"
	err := c.Validate()
	if err == nil {
		t.Fatal("a garbage config validated")
	}
	for _, want := range []string{
		"pass --genesis FILE", `control_socket "run/meshvpn/client.sock"`, "listen:", `tun.address "fd00::2/128"`,
		"tun.mtu", `unknown backend "tap"`, "keepalive_interval (30s) < dead_after (10s)", `log level "loud"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestValidateOneProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"address without prefix", func(c *Config) { c.TUN.Address = "10.99.0.2" }, "tun.address"},
		{"address IPv4-mapped", func(c *Config) { c.TUN.Address = "::ffff:10.99.0.2/128" }, "tun.address"},
		{"address garbage", func(c *Config) { c.TUN.Address = "tunnel" }, "tun.address"},
		{"mtu too small", func(c *Config) { c.TUN.MTU = tun.MinMTU - 1 }, "tun.mtu"},
		{"mtu smallest", func(c *Config) { c.TUN.MTU = tun.MinMTU }, ""},
		{"mtu largest", func(c *Config) { c.TUN.MTU = DefaultMTU }, ""},
		{"mtu too big", func(c *Config) { c.TUN.MTU = DefaultMTU + 1 }, "tun.mtu"},
		{"mtu negative", func(c *Config) { c.TUN.MTU = -1 }, "tun.mtu"},
		{"keepalive equal to dead_after", func(c *Config) { c.Link.KeepaliveInterval, c.Link.DeadAfter = time.Second, time.Second }, "link:"},
		{"keepalive zero", func(c *Config) { c.Link.KeepaliveInterval = 0 }, "link:"},
		{"control socket too long", func(c *Config) { c.ControlSocket = "/" + strings.Repeat("s", 100) }, "control_socket"},
		{"control socket empty", func(c *Config) { c.ControlSocket = "" }, "control_socket"},
		{"no tun name", func(c *Config) { c.TUN.Name = "" }, "tun.name"},
		{"listen port only", func(c *Config) { c.Listen = ":7000" }, "listen:"},
		{"water backend", func(c *Config) { c.TUN.Backend = "water" }, ""},
		{"metrics off", func(c *Config) { c.Metrics = "" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestClientGuideShowsTheExample keeps the configuration in docs/client.md the real one.
func TestClientGuideShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/client.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	if !strings.Contains(string(doc), "```toml\n"+ExampleConfig+"```") {
		t.Error("docs/client.md does not show example.toml as it is; paste `meshvpn-client example-config` into it")
	}
}
