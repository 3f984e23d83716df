package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Open creates a TUN device in the calling thread's network namespace, sets its MTU, its address if
// cfg.Addr is valid, and brings it up if cfg.Up. A caller that switches namespaces per thread must
// hold the thread (runtime.LockOSThread) across Open; afterwards the device works from any thread.
func Open(cfg Config) (Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tun: %w", err)
	}
	cfg = cfg.withDefaults()
	var (
		dev Device
		err error
	)
	switch cfg.Backend {
	case BackendWireGuard:
		dev, err = openWireGuard(cfg.Name, cfg.MTU)
	case BackendWater:
		dev, err = openWater(cfg.Name, cfg.MTU)
	}
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("tun: device %q is held by another program (another VPN? pick another tun name): %w", cfg.Name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tun: open %s device %q: %w", cfg.Backend, cfg.Name, err)
	}
	if err := configure(dev.Name(), cfg.Addr, cfg.MTU, cfg.Up, cfg.Addr6); err != nil {
		return nil, errors.Join(fmt.Errorf("tun: %w", err), dev.Close())
	}
	return dev, nil
}

// Configure gives the interface name in the calling thread's network namespace the address addr
// (skipped if addr is not valid) and the MTU mtu (skipped if zero), and brings it up. It is
// idempotent, so a restarted daemon may call it on a device that is already configured.
func Configure(name string, addr netip.Prefix, mtu int) error {
	if err := configure(name, addr, mtu, true); err != nil {
		return fmt.Errorf("tun: %w", err)
	}
	return nil
}

// addrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): no automatic IPv6 addresses.
const addrGenModeNone = 1

func configure(name string, addr netip.Prefix, mtu int, up bool, addrs6 ...netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("configure %q: %w", name, err)
	}
	// No link-local address: the kernel would send router solicitations and MLD reports into the
	// tunnel from it, which no one there answers. A host without IPv6 refuses this; nothing to do then.
	_ = netlink.LinkSetIP6AddrGenMode(link, addrGenModeNone)
	if mtu != 0 && link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("configure %q: set MTU %d: %w", name, mtu, err)
		}
	}
	if addr.IsValid() {
		ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
		// Replace rather than add, so that configuring twice is not an error (EEXIST).
		if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet}); err != nil {
			return fmt.Errorf("configure %q: set address %s: %w", name, addr, err)
		}
	}
	for _, a := range addrs6 {
		if !a.IsValid() {
			continue
		}
		ipnet := &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), 128)}
		if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet, Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("configure %q: set IPv6 address %s: %w", name, a, err)
		}
	}
	if up {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("configure %q: set up: %w", name, err)
		}
	}
	return nil
}
