package discovery

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/authority"
)

// ExampleConfig is the documented example configuration; its values are the defaults.
//
//go:embed example.toml
var ExampleConfig string

// DefaultConfigPath is where the daemon looks for its configuration when no --config is given.
const DefaultConfigPath = "/etc/meshvpn/discovery.toml"

// Config is an authority's configuration (the TOML file; see example.toml).
type Config struct {
	Genesis  string        `toml:"genesis"`
	DataDir  string        `toml:"data_dir"`
	Period   time.Duration `toml:"period"`
	Validity time.Duration `toml:"validity"` // 0: three periods; at least two
	daemon.Logging
	MetricsPublic bool        `toml:"metrics_public"`
	DHT           DHTConfig   `toml:"dht"`
	HTTP          HTTPConfig  `toml:"http"`
	Crawl         CrawlConfig `toml:"crawl"`
	Probe         ProbeConfig `toml:"probe"`
	Flags         FlagsConfig `toml:"flags"`
	// NewIdentity lets the authority make a new identity key beside the database of one that ran in
	// data_dir before (LoadIdentity). A flag only (--new-identity), never a setting of the file.
	NewIdentity bool `toml:"-"`
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
	// LinkTimers are the probe links' timers (keepalive_interval, dead_after): they should match the
	// relays' (a relay that declares a quiet link dead sooner than this side keepalives it forgets it
	// while this side still sends on it).
	daemon.LinkTimers
}

// FlagsConfig holds the thresholds of the flag rules (see core/authority).
type FlagsConfig struct {
	StableAge             time.Duration `toml:"stable_age"`
	StableRatio           float64       `toml:"stable_ratio"`
	FastFraction          float64       `toml:"fast_fraction"`
	DegradedLatencyFactor float64       `toml:"degraded_latency_factor"`
	DegradedLatencyFloor  time.Duration `toml:"degraded_latency_floor"`
	DropAfterFailures     int           `toml:"drop_after_failures"`
	DropAfterMissed       int           `toml:"drop_after_missed"`
	MinGuards             int           `toml:"min_guards"`
}

// DefaultConfig returns the defaults: the values of ExampleConfig.
func DefaultConfig() Config {
	var c Config
	if err := daemon.DecodeConfig("example", []byte(ExampleConfig), &c); err != nil {
		panic(err) // the example is part of the binary and tested
	}
	return c
}

// Validate reports every problem with the configuration at once. It does not read the genesis file
// (Start does), so that `info` works before there is one.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

// settings returns the authority's configuration, without genesis and identity, or every problem with
// c at once.
func (c *Config) settings() (authority.Config, error) {
	s := authority.Config{
		DataDir: c.DataDir, Period: c.Period, Validity: c.Validity,
		Crawl: authority.CrawlConfig{Concurrency: c.Crawl.Concurrency, WhoisTimeout: c.Crawl.WhoisTimeout, FetchTimeout: c.Crawl.FetchTimeout},
		Probe: authority.ProbeConfig{
			Timeout: c.Probe.Timeout, Concurrency: c.Probe.Concurrency, Burst: c.Probe.Burst, BurstSize: c.Probe.BurstSize,
			History: c.Probe.History, KeepaliveInterval: c.Probe.KeepaliveInterval, DeadAfter: c.Probe.DeadAfter,
		},
		Rules: authority.Rules{
			StableAge: c.Flags.StableAge, StableRatio: c.Flags.StableRatio, FastFraction: c.Flags.FastFraction,
			LatencyFactor: c.Flags.DegradedLatencyFactor, LatencyFloor: c.Flags.DegradedLatencyFloor,
			DropFailures: c.Flags.DropAfterFailures, DropMissed: c.Flags.DropAfterMissed,
			MinGuards: c.Flags.MinGuards,
		},
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Genesis == "" {
		bad("genesis: want the network's genesis file")
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		bad("data_dir %q: want an absolute path", c.DataDir)
	}
	var err error
	if s.DHTListen, err = netip.ParseAddrPort(c.DHT.Listen); err != nil {
		bad("dht.listen: %v", err)
	}
	if c.DHT.PublicIP != "" {
		ip, err := netip.ParseAddr(c.DHT.PublicIP)
		if err != nil || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			bad("dht.public_ip %q: want the unicast address others reach this host at", c.DHT.PublicIP)
		}
		s.PublicIP = ip.Unmap()
	}
	if s.HTTPListen, err = netip.ParseAddrPort(c.HTTP.Listen); err != nil {
		bad("http.listen: %v", err)
	}
	if s.Probe.Source, err = netip.ParseAddr(c.Probe.Source); err != nil || s.Probe.Source.Zone() != "" || s.Probe.Source.IsMulticast() {
		bad("probe.source %q: want an IP address of this host (0.0.0.0 or :: for any)", c.Probe.Source)
	}
	s.Probe.Source = s.Probe.Source.Unmap()
	if err := s.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Logging.Validate(c.MetricsPublic)...)
	return s, errors.Join(errs...)
}
