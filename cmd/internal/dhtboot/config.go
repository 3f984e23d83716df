package dhtboot

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// ExampleConfig is the documented example configuration; its values are the defaults.
//
//go:embed example.toml
var ExampleConfig string

// DefaultConfigPath is where the daemon looks for its configuration when no --config is given.
const DefaultConfigPath = "/etc/meshvpn/dht-bootstrap.toml"

// NodesFile is the file in the data directory that keeps the routing table across restarts.
const NodesFile = "dht-nodes"

// Config is a bootstrap node's configuration (the TOML file; see example.toml).
type Config struct {
	DataDir  string `toml:"data_dir"`
	PublicIP string `toml:"public_ip"`
	daemon.Logging
	MetricsPublic bool       `toml:"metrics_public"`
	DHT           DHTConfig  `toml:"dht"`
	STUN          STUNConfig `toml:"stun"`
}

// DHTConfig is the DHT node's part.
type DHTConfig struct {
	Listen    string   `toml:"listen"`
	Bootstrap []string `toml:"bootstrap"`
}

// STUNConfig is the STUN server's part; an empty Listen turns the server off.
type STUNConfig struct {
	Listen string `toml:"listen"`
	Rate   int    `toml:"rate"`
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
	publicIP   netip.Addr // invalid when not configured
	dhtListen  netip.AddrPort
	bootstrap  []netip.AddrPort
	stunListen netip.AddrPort // invalid when STUN is off
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (settings, error) {
	var s settings
	var errs []error
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		errs = append(errs, fmt.Errorf("data_dir %q: want an absolute path", c.DataDir))
	}
	if c.PublicIP != "" {
		ip, err := netip.ParseAddr(c.PublicIP)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("public_ip: %w", err))
		case ip.Unmap().IsUnspecified() || ip.Zone() != "" || ip.IsMulticast():
			errs = append(errs, fmt.Errorf("public_ip %q: want the unicast address others reach this host at", c.PublicIP))
		default:
			s.publicIP = ip.Unmap()
		}
	}
	var err error
	if s.dhtListen, err = parseListen(c.DHT.Listen); err != nil {
		errs = append(errs, fmt.Errorf("dht.listen: %w", err))
	}
	if s.publicIP.IsValid() && s.dhtListen.IsValid() && s.publicIP.Is4() != s.dhtListen.Addr().Is4() {
		// The node id is made for public_ip, and the others see the listen address's family.
		errs = append(errs, fmt.Errorf("public_ip %s: not of dht.listen's address family (%s)", s.publicIP, s.dhtListen))
	}
	seen := make(map[netip.AddrPort]bool, len(c.DHT.Bootstrap))
	for i, a := range c.DHT.Bootstrap {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(a))
		if err == nil {
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("dht.bootstrap[%d]: %w (want IP:port)", i, err))
		case ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" || ap.Addr().IsMulticast():
			errs = append(errs, fmt.Errorf("dht.bootstrap[%d] %q: want the IP:port of another node", i, a))
		case seen[ap]:
			errs = append(errs, fmt.Errorf("dht.bootstrap[%d] %s: listed twice", i, ap))
		case ap == s.dhtListen:
			errs = append(errs, fmt.Errorf("dht.bootstrap[%d] %s: this node's own address", i, ap))
		case s.dhtListen.IsValid() && ap.Addr().Is4() != s.dhtListen.Addr().Is4():
			errs = append(errs, fmt.Errorf("dht.bootstrap[%d] %s: not of dht.listen's address family (%s)", i, ap, s.dhtListen))
		default:
			seen[ap] = true
			s.bootstrap = append(s.bootstrap, ap)
		}
	}
	if c.STUN.Listen != "" {
		if s.stunListen, err = parseListen(c.STUN.Listen); err != nil {
			errs = append(errs, fmt.Errorf("stun.listen: %w", err))
		} else if s.stunListen == s.dhtListen && s.stunListen.Port() != 0 {
			errs = append(errs, fmt.Errorf("stun.listen %s: the same as dht.listen; each needs its own port", s.stunListen))
		}
	}
	if c.STUN.Rate <= 0 {
		errs = append(errs, fmt.Errorf("stun.rate %d: want a positive number of answers per second", c.STUN.Rate))
	}
	errs = append(errs, c.Logging.Validate(c.MetricsPublic)...)
	return s, errors.Join(errs...)
}

// parseListen reads a UDP listen address: IP:port, port 0 for one the kernel chooses.
func parseListen(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%w (want IP:port)", err)
	}
	if ap.Addr().Is4In6() {
		return ap, fmt.Errorf("%q: write an IPv4 address as such", s)
	}
	if ap.Addr().IsMulticast() {
		return ap, fmt.Errorf("%q: a multicast address", s)
	}
	return ap, nil
}

// Addresses are where other nodes reach a bootstrap node, as a genesis file names them.
type Addresses struct {
	DHT  netip.AddrPort
	STUN netip.AddrPort // invalid when STUN is off
}

// GenesisLines returns the addresses as the lines of a genesis file (core/genesis).
func (a Addresses) GenesisLines() string {
	s := "bootstrap " + a.DHT.String() + "\n"
	if a.STUN.IsValid() {
		s += "stun " + a.STUN.String() + "\n"
	}
	return s
}

// Addresses returns where other nodes will reach a node with this configuration: the listen
// addresses, with public_ip for a wildcard host. A port 0 is chosen only at start, so it is an
// error here, as is a wildcard host without public_ip.
func (c *Config) Addresses() (Addresses, error) {
	s, err := c.settings()
	if err != nil {
		return Addresses{}, err
	}
	var errs []error
	check := func(key string, ap netip.AddrPort) netip.AddrPort {
		ap = advertised(ap, s.publicIP)
		if ap.Port() == 0 {
			errs = append(errs, fmt.Errorf("%s %s: the kernel chooses port 0's port at start; configure a fixed port", key, ap))
		}
		if ap.Addr().IsUnspecified() {
			errs = append(errs, fmt.Errorf("%s %s does not say where others reach this host: set public_ip (of its address family)", key, ap))
		}
		return ap
	}
	a := Addresses{DHT: check("dht.listen", s.dhtListen)}
	if s.stunListen.IsValid() {
		a.STUN = check("stun.listen", s.stunListen)
	}
	return a, errors.Join(errs...)
}

// advertised returns the address others reach a socket bound to ap at: ap, or the public IP on ap's
// port when ap's host is a wildcard of the public IP's family.
func advertised(ap netip.AddrPort, public netip.Addr) netip.AddrPort {
	if ap.Addr().IsUnspecified() && public.IsValid() && public.Is4() == ap.Addr().Is4() {
		return netip.AddrPortFrom(public, ap.Port())
	}
	return ap
}
