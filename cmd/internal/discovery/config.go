package discovery

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/dht"
)

// ExampleConfig is the documented example configuration; its values are the defaults.
//
//go:embed example.toml
var ExampleConfig string

// DefaultConfigPath is where the daemon looks for its configuration when no --config is given.
const DefaultConfigPath = "/etc/meshvpn/discovery.toml"

// Limits on the probe burst: Circuit.Probe sends at most 256 probes, and a 1200-byte probe fits the
// largest cell of a one-hop circuit.
const (
	maxBurst     = 256
	maxBurstSize = 1200
	minBurstSize = 12
)

// Config is an authority's configuration (the TOML file; see example.toml).
type Config struct {
	Genesis       string        `toml:"genesis"`
	DataDir       string        `toml:"data_dir"`
	Period        time.Duration `toml:"period"`
	Validity      time.Duration `toml:"validity"` // 0: three periods; at least two
	Metrics       string        `toml:"metrics"`
	MetricsPublic bool          `toml:"metrics_public"`
	LogLevel      string        `toml:"log_level"`
	DHT           DHTConfig     `toml:"dht"`
	HTTP          HTTPConfig    `toml:"http"`
	Crawl         CrawlConfig   `toml:"crawl"`
	Probe         ProbeConfig   `toml:"probe"`
	Flags         FlagsConfig   `toml:"flags"`

	// dhtTuning, if set, adjusts the DHT node's configuration (tests: short item lifetimes).
	dhtTuning func(*dht.Config)
}

// DHTConfig is the authority's DHT node.
type DHTConfig struct {
	Listen   string `toml:"listen"`
	PublicIP string `toml:"public_ip"`
}

// HTTPConfig is where the directory is served.
type HTTPConfig struct {
	Listen string `toml:"listen"`
}

// CrawlConfig bounds the whois questions and descriptor fetches of a round.
type CrawlConfig struct {
	Concurrency  int           `toml:"concurrency"`
	WhoisTimeout time.Duration `toml:"whois_timeout"`
	FetchTimeout time.Duration `toml:"fetch_timeout"`
}

// ProbeConfig is how relays are measured.
type ProbeConfig struct {
	Source      string        `toml:"source"`
	Timeout     time.Duration `toml:"timeout"`
	Concurrency int           `toml:"concurrency"`
	Burst       int           `toml:"burst"`
	BurstSize   int           `toml:"burst_size"`
	History     int           `toml:"history"`
	// KeepaliveInterval and DeadAfter are the probe links' timers: they should match the relays'
	// (a relay that declares a quiet link dead sooner than this side keepalives it forgets it while
	// this side still sends on it).
	KeepaliveInterval time.Duration `toml:"keepalive_interval"`
	DeadAfter         time.Duration `toml:"dead_after"`
}

// FlagsConfig holds the thresholds of the flag rules (see the package documentation).
type FlagsConfig struct {
	StableAge             time.Duration `toml:"stable_age"`
	StableRatio           float64       `toml:"stable_ratio"`
	FastFraction          float64       `toml:"fast_fraction"`
	DegradedLatencyFactor float64       `toml:"degraded_latency_factor"`
	DegradedLatencyFloor  time.Duration `toml:"degraded_latency_floor"`
	DropAfterFailures     int           `toml:"drop_after_failures"`
	DropAfterMissed       int           `toml:"drop_after_missed"`
}

// DefaultConfig returns the defaults: the values of ExampleConfig.
func DefaultConfig() Config {
	var c Config
	if err := daemon.DecodeConfig("example", []byte(ExampleConfig), &c); err != nil {
		panic(err) // the example is part of the binary and tested
	}
	return c
}

// settings are a valid Config's values in their types.
type settings struct {
	dhtListen  netip.AddrPort
	publicIP   netip.Addr // invalid when not configured
	httpListen netip.AddrPort
	source     netip.Addr
	validity   time.Duration
	rules      Rules
}

// Validate reports every problem with the configuration at once. It does not read the genesis file
// (Start does), so that `info` works before there is one.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (settings, error) {
	var s settings
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Genesis == "" {
		bad("genesis: want the network's genesis file")
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		bad("data_dir %q: want an absolute path", c.DataDir)
	}
	if c.Period <= 0 {
		bad("period %v: want a positive duration", c.Period)
	}
	s.validity = c.Validity
	if s.validity == 0 {
		s.validity = 3 * c.Period
	}
	// A document must outlive its successor's round: that is served up to a period and half a
	// period (the round's budget) after it, plus the time signing and storing take.
	if s.validity < 2*c.Period || s.validity < time.Second || s.validity > directory.MaxValidity {
		bad("validity %v: want at least two periods (2 × %v) and one second, at most %v", s.validity, c.Period, directory.MaxValidity)
	}
	var err error
	if s.dhtListen, err = netip.ParseAddrPort(c.DHT.Listen); err != nil {
		bad("dht.listen: %v", err)
	}
	if c.DHT.PublicIP != "" {
		ip, err := netip.ParseAddr(c.DHT.PublicIP)
		if err != nil || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			bad("dht.public_ip %q: want the unicast address others reach this host at", c.DHT.PublicIP)
		}
		s.publicIP = ip.Unmap()
	}
	if s.httpListen, err = netip.ParseAddrPort(c.HTTP.Listen); err != nil {
		bad("http.listen: %v", err)
	}
	if s.source, err = netip.ParseAddr(c.Probe.Source); err != nil || s.source.Zone() != "" || s.source.IsMulticast() {
		bad("probe.source %q: want an IP address of this host (0.0.0.0 or :: for any)", c.Probe.Source)
	}
	s.source = s.source.Unmap()
	if c.Crawl.Concurrency < 1 || c.Probe.Concurrency < 1 {
		bad("crawl.concurrency %d, probe.concurrency %d: want at least 1", c.Crawl.Concurrency, c.Probe.Concurrency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"crawl.whois_timeout", c.Crawl.WhoisTimeout}, {"crawl.fetch_timeout", c.Crawl.FetchTimeout}, {"probe.timeout", c.Probe.Timeout}} {
		if d.v <= 0 {
			bad("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if c.Probe.KeepaliveInterval <= 0 || c.Probe.DeadAfter <= c.Probe.KeepaliveInterval {
		bad("probe: want 0 < keepalive_interval (%v) < dead_after (%v)", c.Probe.KeepaliveInterval, c.Probe.DeadAfter)
	}
	if c.Probe.Burst < 1 || c.Probe.Burst > maxBurst {
		bad("probe.burst %d: want 1 to %d", c.Probe.Burst, maxBurst)
	}
	if c.Probe.BurstSize < minBurstSize || c.Probe.BurstSize > maxBurstSize {
		bad("probe.burst_size %d: want %d to %d bytes", c.Probe.BurstSize, minBurstSize, maxBurstSize)
	}
	if c.Probe.History < 1 || c.Probe.History > maxHistory {
		bad("probe.history %d: want 1 to %d", c.Probe.History, maxHistory)
	}
	s.rules = Rules{
		StableAge: c.Flags.StableAge, StableRatio: c.Flags.StableRatio, FastFraction: c.Flags.FastFraction,
		LatencyFactor: c.Flags.DegradedLatencyFactor, LatencyFloor: c.Flags.DegradedLatencyFloor,
		DropFailures: c.Flags.DropAfterFailures, DropMissed: c.Flags.DropAfterMissed,
	}
	if err := s.rules.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Flags.DropAfterFailures > c.Probe.History {
		bad("flags.drop_after_failures %d: more than the probe.history %d kept", c.Flags.DropAfterFailures, c.Probe.History)
	}
	if _, err := daemon.NewLogger(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.Metrics != "" {
		if err := daemon.CheckMetricsAddr(c.Metrics, c.MetricsPublic); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}
