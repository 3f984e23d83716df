package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Backend names the implementation behind a Device.
type Backend string

// The backends Open knows.
const (
	// BackendWireGuard is golang.zx2c4.com/wireguard/tun: batched reads and writes with offloads.
	BackendWireGuard Backend = "wireguard"
	// BackendWater is github.com/songgao/water: one packet per system call.
	BackendWater Backend = "water"
)

// DefaultBackend is the backend of a Config whose Backend is empty.
const DefaultBackend = BackendWireGuard

// DefaultMTU is the MTU of a Config whose MTU is zero: WireGuard's figure, which leaves room for
// the outer IPv6 and UDP headers and a tunnel header inside a 1500-byte path.
const DefaultMTU = 1420

// Limits that Validate enforces.
const (
	// MinMTU is the smallest MTU Validate accepts: IPv4's minimum reassembly size, below which
	// hosts are not required to work.
	MinMTU = 576
	// MinMTUIPv6 is the smallest MTU Validate accepts when Addr is IPv6, which needs 1280.
	MinMTUIPv6 = 1280
	// MaxMTU is the largest MTU a TUN device takes (the IPv4 total length field's limit).
	MaxMTU = 65535
	// MaxNameLen is the longest interface name the kernel takes (IFNAMSIZ less the NUL).
	MaxNameLen = 15
)

// Config describes the device Open creates. The zero Config is valid: a device named by the
// kernel, with DefaultMTU, DefaultBackend, no address, left down.
type Config struct {
	// Name is the interface name, e.g. "mvpn0"; empty lets the kernel pick one (tun0, tun1, …).
	Name string
	// MTU is the device's MTU; zero means DefaultMTU.
	MTU int
	// Backend selects the implementation; empty means DefaultBackend.
	Backend Backend
	// Addr, if valid, is set on the device: the host's address and the prefix routed into the
	// device (10.77.0.1/24, not 10.77.0.0/24).
	Addr netip.Prefix
	// Addr6, if valid, is an IPv6 address set on the device as well (fd00:8::1/112), with no
	// duplicate address detection: nothing else is on a TUN's link, and a tentative address could not
	// be used for the second or two DAD takes.
	Addr6 netip.Prefix
	// Up brings the link up, which also installs the route for Addr.
	Up bool
}

// Validate returns every problem with c joined into one error, or nil.
func (c Config) Validate() error {
	var errs []error
	if err := validateName(c.Name); err != nil {
		errs = append(errs, err)
	}
	switch c.Backend {
	case "", BackendWireGuard, BackendWater:
	default:
		errs = append(errs, fmt.Errorf("unknown backend %q (want %q or %q)", c.Backend, BackendWireGuard, BackendWater))
	}
	mtu := c.withDefaults().MTU
	if mtu < MinMTU || mtu > MaxMTU {
		errs = append(errs, fmt.Errorf("MTU %d out of range [%d, %d]", mtu, MinMTU, MaxMTU))
	}
	if c.Addr != (netip.Prefix{}) {
		a := c.Addr.Addr()
		switch {
		case !c.Addr.IsValid():
			errs = append(errs, fmt.Errorf("address %s is not a valid prefix", c.Addr))
		case a.Is4In6():
			// The kernel would file it as IPv6, which is never what an IPv4 literal meant.
			errs = append(errs, fmt.Errorf("address %s is IPv4-mapped IPv6", c.Addr))
		case a.IsUnspecified() || a.IsMulticast():
			errs = append(errs, fmt.Errorf("address %s is not a unicast host address", c.Addr))
		case a.Is6() && mtu < MinMTUIPv6:
			errs = append(errs, fmt.Errorf("MTU %d below IPv6's minimum %d for address %s", mtu, MinMTUIPv6, c.Addr))
		}
	}
	if c.Addr6 != (netip.Prefix{}) {
		a := c.Addr6.Addr()
		switch {
		case !c.Addr6.IsValid() || !a.Is6() || a.Is4In6():
			errs = append(errs, fmt.Errorf("IPv6 address %s is not an IPv6 prefix", c.Addr6))
		case a.IsUnspecified() || a.IsMulticast():
			errs = append(errs, fmt.Errorf("IPv6 address %s is not a unicast host address", c.Addr6))
		case mtu < MinMTUIPv6:
			errs = append(errs, fmt.Errorf("MTU %d below IPv6's minimum %d for address %s", mtu, MinMTUIPv6, c.Addr6))
		}
	}
	return errors.Join(errs...)
}

// validateName applies the kernel's rules (dev_valid_name): the kernel would refuse these names
// anyway, but only after the device file is open, and with a bare EINVAL.
func validateName(name string) error {
	switch {
	case name == "":
		return nil
	case len(name) > MaxNameLen:
		return fmt.Errorf("name %q longer than %d bytes", name, MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("name %q is reserved", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("name %q contains '/', ':' or white space", name)
	}
	return nil
}

// withDefaults fills in the zero fields that have defaults.
func (c Config) withDefaults() Config {
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.Backend == "" {
		c.Backend = DefaultBackend
	}
	return c
}
