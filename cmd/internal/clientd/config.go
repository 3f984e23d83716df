package clientd

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/tun"
)

// ExampleConfig is the documented example configuration; its values are the defaults.
//
//go:embed example.toml
var ExampleConfig string

// DefaultConfigPath is where the client looks for its configuration when no --config is given.
const DefaultConfigPath = "/etc/meshvpn/client.toml"

// DefaultMTU is the TUN MTU: the largest packet a full cell carries to the third hop, less the relay
// message header (docs/protocol.md §4), so that no packet is fragmented anywhere on the way.
var DefaultMTU = cell.MaxData(onion.PayloadLen(onion.FullSize, 3))

// Config is the client's configuration (the TOML file; see example.toml).
type Config struct {
	Relays           string        `toml:"relays"`
	Genesis          string        `toml:"genesis"`
	StateDir         string        `toml:"state_dir"`
	DirectoryRefresh time.Duration `toml:"directory_refresh"`
	RatchetEvery     time.Duration `toml:"ratchet_every"`
	// MaxCircuitLifetime is how long one circuit carries traffic before the client moves, make
	// before break, to a fresh one to the same exit (circmgr.Config.MaxLifetime).
	MaxCircuitLifetime time.Duration `toml:"max_circuit_lifetime"`
	Exit               string        `toml:"exit"`
	ExitPort           uint16        `toml:"exit_port"`
	// Detour sends a flow the exit's policy refuses over a second circuit to an exit that allows it
	// (core/detour; detour.go). Only with a directory, which says what exits allow.
	Detour          bool     `toml:"detour"`
	AllowSameSubnet bool     `toml:"allow_same_subnet"`
	EntryGuards     []string `toml:"entry_guards"`
	Listen          string   `toml:"listen"`
	ControlSocket   string   `toml:"control_socket"`
	daemon.Logging
	LogFile string            `toml:"log_file"`
	TUN     TUNConfig         `toml:"tun"`
	Link    daemon.LinkTimers `toml:"link"`
	DNS     DNSConfig         `toml:"dns"`

	// KillSwitch blocks everything but the tunnel and the client's own links from the start, and
	// after the daemon dies (network/firewall); only `meshvpn-client down` lifts it.
	KillSwitch bool `toml:"kill_switch"`
	// AllowLAN lets the local network through the kill switch (DNS there excepted).
	AllowLAN bool `toml:"allow_lan"`

	// Exclude lists address ranges that go around the tunnel, by the host's own route (split
	// tunnelling, split.go); the kill switch lets them through.
	Exclude []string `toml:"exclude"`
	// Include, if not empty, sends only these ranges through the tunnel, and everything else around it.
	Include []string `toml:"include"`
	// ExcludeCgroup is the cgroup v2 group whose programs go around the tunnel (`meshvpn-client
	// exclude -- PROGRAM` starts one there): relative to the cgroup v2 root, or absolute; "" turns
	// per-application split tunnelling off.
	ExcludeCgroup string `toml:"exclude_cgroup"`
	// ExcludeDomains lists names (each with the names under it) whose addresses go around the tunnel,
	// learnt from the tunnel resolver's answers (domains.go).
	ExcludeDomains []string `toml:"exclude_domains"`
}

// TUNConfig describes the client's TUN device.
type TUNConfig struct {
	Name     string `toml:"name"`
	Backend  string `toml:"backend"`
	Address  string `toml:"address"`
	Address6 string `toml:"address6"`
	MTU      int    `toml:"mtu"`
	RouteAll bool   `toml:"route_all"`
}

// DNSConfig says how the host's DNS is pointed at the tunnel resolver while the client is up.
type DNSConfig struct {
	Mode       string `toml:"mode"`        // sysdns.Mode: auto, resolved, file or off
	ResolvConf string `toml:"resolv_conf"` // the file "file" mode rewrites
}

// DefaultConfig returns the defaults: the values of ExampleConfig.
func DefaultConfig() Config {
	var c Config
	if err := daemon.DecodeConfig("example", []byte(ExampleConfig), &c); err != nil {
		panic(err) // the example is part of the binary and tested
	}
	return c
}

// mtu returns the TUN MTU in force.
func (c *Config) mtu() int {
	if c.TUN.MTU == 0 {
		return DefaultMTU
	}
	return c.TUN.MTU
}

// addr6 returns the tunnel's IPv6 address, or the zero Prefix for none (or one that does not parse:
// Validate reports it). A TUN MTU below IPv6's minimum of 1280 leaves the tunnel without one: the
// kernel turns IPv6 off on such a device, and IPv6 is then dropped inside the tunnel as without an
// exit that carries it.
func (c *Config) addr6() netip.Prefix {
	p, err := netip.ParsePrefix(c.TUN.Address6)
	if err != nil || c.mtu() < tun.MinMTUIPv6 {
		return netip.Prefix{}
	}
	return p
}

// Validate reports every problem with the configuration at once, as a daemon.ConfigError.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Genesis != "":
		if !filepath.IsAbs(c.StateDir) {
			errs = append(errs, fmt.Errorf("state_dir %q: want an absolute path (the guard set and directory chain are kept there)", c.StateDir))
		}
		if c.DirectoryRefresh < time.Second {
			errs = append(errs, fmt.Errorf("directory_refresh %v: want at least 1s", c.DirectoryRefresh))
		}
		if _, err := parseExitChoice(c.Exit, c.ExitPort); err != nil {
			errs = append(errs, err)
		}
		for _, g := range c.EntryGuards {
			if _, err := keys.ParseIdentityPublic(g); err != nil {
				errs = append(errs, fmt.Errorf("entry_guards %q: %w", g, err))
			}
		}
	case c.Relays == "":
		errs = append(errs, fmt.Errorf("no network to join: pass --genesis FILE (the network's genesis file, from its operators), or set genesis in %s", DefaultConfigPath))
	}
	errs = append(errs, c.DNS.validate(c)...)
	errs = append(errs, c.validateSplit()...)
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.ControlSocket == "" || !filepath.IsAbs(c.ControlSocket) || len(c.ControlSocket) > 100 {
		errs = append(errs, fmt.Errorf("control_socket %q: want an absolute path of at most 100 bytes", c.ControlSocket))
	}
	errs = append(errs, c.Logging.Validate(false)...)
	addr, err := netip.ParsePrefix(c.TUN.Address)
	if err != nil || !addr.Addr().Is4() {
		errs = append(errs, fmt.Errorf("tun.address %q: want an IPv4 address with its prefix length", c.TUN.Address))
	}
	if c.TUN.MTU != 0 && (c.TUN.MTU < tun.MinMTU || c.TUN.MTU > DefaultMTU) {
		errs = append(errs, fmt.Errorf("tun.mtu %d: want 0 (automatic) or %d to %d (a larger packet does not fit a cell)", c.TUN.MTU, tun.MinMTU, DefaultMTU))
	}
	if c.TUN.Address6 != "" {
		if a, err := netip.ParsePrefix(c.TUN.Address6); err != nil || !a.Addr().Is6() || a.Addr().Is4In6() {
			errs = append(errs, fmt.Errorf("tun.address6 %q: want an IPv6 address with its prefix length, or \"\"", c.TUN.Address6))
		}
	}
	tc := tun.Config{Name: c.TUN.Name, Backend: tun.Backend(c.TUN.Backend), MTU: c.mtu(), Addr6: c.addr6()}
	if c.TUN.Name == "" {
		errs = append(errs, errors.New("tun.name: want a device name"))
	} else if err := tc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("tun: %w", err))
	}
	if c.RatchetEvery < time.Second || c.RatchetEvery > 24*time.Hour {
		errs = append(errs, fmt.Errorf("ratchet_every %v: want 1s to 24h", c.RatchetEvery))
	}
	if c.MaxCircuitLifetime < 5*time.Second || c.MaxCircuitLifetime > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("max_circuit_lifetime %v: want 5s to 168h", c.MaxCircuitLifetime))
	}
	if err := c.Link.Validate("link"); err != nil {
		errs = append(errs, err)
	}
	return daemon.Misconfigured(errors.Join(errs...))
}
