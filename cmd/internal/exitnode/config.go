package exitnode

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/policy"
	"github.com/meshvpn/meshvpn/network/tun"
)

// ExampleConfig is the documented example configuration; its values are the defaults.
//
//go:embed example.toml
var ExampleConfig string

// DefaultConfigPath is where the daemon looks for its configuration when no --config is given.
const DefaultConfigPath = "/etc/meshvpn/exit-node.toml"

// MaxRatchetEvery bounds ratchet_every: the design replaces circuit keys hourly, and a day is already
// far from that.
const MaxRatchetEvery = 24 * time.Hour

// Config is an exit node's configuration (the TOML file; see example.toml).
type Config struct {
	Name          string `toml:"name"`
	DataDir       string `toml:"data_dir"`
	Listen        string `toml:"listen"`
	PublicAddress string `toml:"public_address"`
	RelayOnly     bool   `toml:"relay_only"`
	daemon.Logging
	MetricsPublic bool `toml:"metrics_public"`
	// Genesis, DHTListen, PublishInterval and the descriptor's fields: see example.toml.
	Genesis         string            `toml:"genesis"`
	DHTListen       string            `toml:"dht_listen"`
	PublishInterval time.Duration     `toml:"publish_interval"`
	OnionRotation   time.Duration     `toml:"onion_rotation"`
	RatchetEvery    time.Duration     `toml:"ratchet_every"`
	Country         string            `toml:"country"`
	Region          string            `toml:"region"`
	Bandwidth       uint64            `toml:"bandwidth"`
	Family          []string          `toml:"family"`
	Link            daemon.LinkTimers `toml:"link"`
	Limits          LimitsConfig      `toml:"limits"`
	NAT             NATConfig         `toml:"nat"`
	Exit            ExitConfig        `toml:"exit"`
	// NewIdentity lets the node make a new identity key beside the keys or state of one that ran in
	// data_dir before (CheckKeys). A flag only (--new-identity), never a setting of the file, which
	// would outlive the one start it is meant for.
	NewIdentity bool `toml:"-"`
}

// LimitsConfig bounds what others can make the node hold (relay.Config's limits).
type LimitsConfig struct {
	MaxCircuits        int     `toml:"max_circuits"`
	MaxCircuitsPerLink int     `toml:"max_circuits_per_link"`
	CreateRate         float64 `toml:"create_rate"`
	CreateBurst        int     `toml:"create_burst"`
	MaxQueueMiB        int64   `toml:"max_queue_mib"`
}

func (l LimitsConfig) validate() []error {
	var errs []error
	if l.MaxCircuits < 1 || l.MaxCircuitsPerLink < 1 || l.MaxCircuitsPerLink > l.MaxCircuits {
		errs = append(errs, fmt.Errorf("limits: want 0 < max_circuits_per_link (%d) <= max_circuits (%d)", l.MaxCircuitsPerLink, l.MaxCircuits))
	}
	if !(l.CreateRate > 0) || l.CreateBurst < 1 {
		errs = append(errs, fmt.Errorf("limits: want create_rate (%v) > 0 and create_burst (%d) >= 1", l.CreateRate, l.CreateBurst))
	}
	if l.MaxQueueMiB < 1 || l.MaxQueueMiB > 1<<20 {
		errs = append(errs, fmt.Errorf("limits: max_queue_mib %d: want 1 to %d", l.MaxQueueMiB, 1<<20))
	}
	return errs
}

// apply copies the limits into a relay configuration.
func (l LimitsConfig) apply(rc *relay.Config) {
	rc.MaxCircuits, rc.MaxCircuitsPerLink = l.MaxCircuits, l.MaxCircuitsPerLink
	rc.CreateRate, rc.CreateBurst = l.CreateRate, l.CreateBurst
	rc.MaxQueueMemory = l.MaxQueueMiB << 20
}

// ExitConfig is what only an exit uses.
type ExitConfig struct {
	Pool         string        `toml:"pool"`
	Pool6        string        `toml:"pool6"`
	TUN          string        `toml:"tun"`
	TUNBackend   string        `toml:"tun_backend"`
	Masquerade   bool          `toml:"masquerade"`
	Grace        time.Duration `toml:"grace"`
	Policy       string        `toml:"policy"`
	AllowPrivate bool          `toml:"allow_private"`
	AllowLocal   bool          `toml:"allow_local"`
	Resolvers    []string      `toml:"resolvers"`
}

// resolvers returns the configured DNS servers, port 53 where none is given.
func (e *ExitConfig) resolvers() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	var errs []error
	for _, s := range e.Resolvers {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, ap)
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53))
		} else {
			errs = append(errs, fmt.Errorf("exit.resolvers %q: want an IP address, with a port or not", s))
		}
	}
	return out, errors.Join(errs...)
}

// DefaultConfig returns the defaults: the values of ExampleConfig.
func DefaultConfig() Config {
	var c Config
	if err := daemon.DecodeConfig("example", []byte(ExampleConfig), &c); err != nil {
		panic(err) // the example is part of the binary and tested
	}
	if c.Name == "" {
		c.Name = defaultName()
	}
	return c
}

func defaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "relay"
	}
	h, _, _ = strings.Cut(h, ".")
	h = strings.Map(func(r rune) rune { // a descriptor's name: letters, digits, '-', '_'
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return r
		}
		return -1
	}, h)
	if len(h) > descriptor.MaxNameLen {
		h = h[:descriptor.MaxNameLen]
	}
	if h == "" {
		return "relay"
	}
	return h
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if err := descriptor.CheckName(c.Name); err != nil { // the descriptor carries it
		errs = append(errs, err)
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		errs = append(errs, fmt.Errorf("data_dir %q: want an absolute path", c.DataDir))
	}
	listen, err := netip.ParseAddrPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.PublicAddress != "" {
		ap, err := netip.ParseAddrPort(c.PublicAddress)
		if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
			errs = append(errs, fmt.Errorf("public_address %q: want the IP:port clients reach this node at", c.PublicAddress))
		}
	} else if err == nil && listen.Addr().IsUnspecified() {
		errs = append(errs, fmt.Errorf("public_address: needed, since listen %s does not say where clients reach this node", c.Listen))
	}
	if c.OnionRotation < time.Second || c.OnionRotation > MaxOnionRotation {
		errs = append(errs, fmt.Errorf("onion_rotation %v: want 1s to %v (a key is answered for two rotations, and descriptors allow %v)", c.OnionRotation, MaxOnionRotation, descriptor.MaxOnionKeyLifetime))
	}
	if c.RatchetEvery < time.Second || c.RatchetEvery > MaxRatchetEvery {
		errs = append(errs, fmt.Errorf("ratchet_every %v: want 1s to %v", c.RatchetEvery, MaxRatchetEvery))
	}
	if err := c.Link.Validate("link"); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Limits.validate()...)
	errs = append(errs, c.Logging.Validate(c.MetricsPublic)...)
	if !c.RelayOnly {
		errs = append(errs, c.Exit.validate()...)
	}
	errs = append(errs, c.NAT.validate()...)
	if c.Genesis != "" {
		if _, err := netip.ParseAddrPort(c.DHTListen); err != nil {
			errs = append(errs, fmt.Errorf("dht_listen: %w", err))
		}
		if c.PublishInterval < time.Second || c.PublishInterval > descriptor.MaxAge/4 {
			errs = append(errs, fmt.Errorf("publish_interval %v: want 1s to %v (descriptors older than %v are stale)", c.PublishInterval, descriptor.MaxAge/4, descriptor.MaxAge))
		}
		for _, f := range c.Family {
			if _, err := keys.ParseIdentityPublic(f); err != nil {
				errs = append(errs, fmt.Errorf("family %q: %w", f, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (e *ExitConfig) validate() []error {
	var errs []error
	if p, err := netip.ParsePrefix(e.Pool); err != nil {
		errs = append(errs, fmt.Errorf("exit.pool: %w", err))
	} else if _, err := nat.NewPool(p.Masked(), p.Masked().Addr().Next()); err != nil {
		errs = append(errs, fmt.Errorf("exit.pool: %w", err))
	}
	if e.Pool6 != "" {
		if p, err := netip.ParsePrefix(e.Pool6); err != nil {
			errs = append(errs, fmt.Errorf("exit.pool6: %w", err))
		} else if _, err := nat.NewPool6(p.Masked(), p.Masked().Addr().Next()); err != nil {
			errs = append(errs, fmt.Errorf("exit.pool6: %w", err))
		}
	}
	tc := tun.Config{Name: e.TUN, Backend: tun.Backend(e.TUNBackend), MTU: exitMTU}
	if err := tc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("exit: %w", err))
	}
	if e.TUN == "" {
		errs = append(errs, errors.New("exit.tun: want a device name"))
	}
	if e.Grace <= 0 {
		errs = append(errs, fmt.Errorf("exit.grace %v: want a positive duration", e.Grace))
	}
	if _, err := policy.Parse(e.Policy); err != nil {
		errs = append(errs, fmt.Errorf("exit.policy: %w", err))
	}
	if _, err := e.resolvers(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// carriesIPv6 reports whether an exit with this configuration and policy p carries IPv6, which its
// descriptor and relay list entry say: it has an IPv6 pool, and its rules accept some port on the
// whole IPv6 internet.
func (e *ExitConfig) carriesIPv6(p *policy.Policy) bool {
	if e.Pool6 == "" {
		return false
	}
	s := p.Summary6()
	return len(s.TCP) > 0 || len(s.UDP) > 0
}

// exitMTU is the exit TUN's MTU: packets leave it for an ordinary 1500-byte internet path.
const exitMTU = 1500
