package route

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/network/tun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inNetns runs the test's goroutine, for the rest of its life, in a fresh namespace deleted after it.
func inNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for network namespaces, and CI must run it")
		}
		t.Skip("needs root for network namespaces")
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the test goroutine
	name := fmt.Sprintf("mvroute%d-%s", os.Getpid(), t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		netns.DeleteNamed(name)
	})
}

// uplink makes an interface (one end of a veth pair; this kernel has no dummy links) with 192.0.2.2/24 and a default route via 192.0.2.1: the host's
// ordinary way out.
func uplink(t *testing.T) netlink.Link {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	if peer, err := netlink.LinkByName("up1"); err == nil {
		netlink.LinkSetUp(peer)
	}
	addr, _ := netlink.ParseAddr("192.0.2.2/24")
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("192.0.2.1"), LinkIndex: l.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	return l
}

func via(t *testing.T, dst string) (dev string, gw string) {
	t.Helper()
	rs, err := netlink.RouteGet(net.ParseIP(dst))
	if err != nil || len(rs) == 0 {
		t.Fatalf("route to %s: %v", dst, err)
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Name, rs[0].Gw.String()
}

func TestTunnelAllWithBypass(t *testing.T) {
	inNetns(t)
	uplink(t)
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	guard := netip.MustParseAddr("198.51.100.7")
	if err := tab.Bypass(guard); err != nil {
		t.Fatal(err)
	}
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	// A second guard, after the tunnel routes are in: its route is still found outside the tunnel.
	if err := tab.Bypass(netip.MustParseAddr("203.0.113.50")); err != nil {
		t.Fatal(err)
	}
	if err := tab.Bypass(guard); err != nil { // idempotent
		t.Fatal(err)
	}
	for dst, want := range map[string]string{"203.0.113.9": "mvtest0", "8.8.4.4": "mvtest0", "198.51.100.7": "up0", "203.0.113.50": "up0", "192.0.2.77": "up0"} {
		if dev, gw := via(t, dst); dev != want {
			t.Errorf("%s goes via %s (gw %s), want %s", dst, dev, gw, want)
		}
	}
	// IPv6 goes into the tunnel too (to be dropped there, not leaked), though the uplink has no IPv6
	// route at all.
	if dev, _ := via(t, "2001:db8::1"); dev != "mvtest0" {
		t.Errorf("IPv6 goes via %s, not into the tunnel", dev)
	}
	if _, gw := via(t, "198.51.100.7"); gw != "192.0.2.1" {
		t.Errorf("the guard's bypass goes via %s, not the old gateway", gw)
	}
	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"203.0.113.9", "198.51.100.7"} {
		if dev, _ := via(t, dst); dev != "up0" {
			t.Errorf("after Close %s still goes via %s", dst, dev)
		}
	}
	if err := tab.Bypass(guard); err == nil {
		t.Error("a closed table took a route")
	}
}

// A bypass taken for a while (the client's directory fetch while it has no circuit) is given back, and
// an address bypassed twice (a guard that is also an authority) stays out until both are released.
func TestBypassRelease(t *testing.T) {
	inNetns(t)
	uplink(t)
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	auth, guard := netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("198.51.100.7")
	for _, a := range []netip.Addr{auth, guard, guard} {
		if err := tab.Bypass(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.Release(auth); err != nil {
		t.Fatal(err)
	}
	if err := tab.Release(guard); err != nil {
		t.Fatal(err)
	}
	for dst, want := range map[string]string{"198.51.100.9": "mvtest0", "198.51.100.7": "up0"} {
		if dev, _ := via(t, dst); dev != want {
			t.Errorf("%s goes via %s, want %s", dst, dev, want)
		}
	}
	if err := tab.Release(guard); err != nil {
		t.Fatal(err)
	}
	if dev, _ := via(t, "198.51.100.7"); dev != "mvtest0" {
		t.Errorf("released twice, the guard still goes via %s", dev)
	}
	if err := tab.Release(netip.MustParseAddr("192.0.2.200")); err != nil {
		t.Fatalf("releasing what was never bypassed: %v", err)
	}
}

func TestBypassWithoutARouteFails(t *testing.T) {
	inNetns(t)
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	if err := tab.Bypass(netip.MustParseAddr("198.51.100.7")); err == nil {
		t.Fatal("a relay with no route but the tunnel was 'bypassed'")
	}
	if _, err := New("nosuchdev0"); err == nil {
		t.Fatal("a table for a missing device")
	}
}

// Routes another VPN holds (OpenVPN's def1 takes the same halves) are named as such, not left as
// "file exists".
func TestTunnelAllSaysAnotherVPNHoldsTheRoutes(t *testing.T) {
	inNetns(t)
	up := uplink(t)
	for _, half := range []string{"0.0.0.0/1", "128.0.0.0/1"} {
		_, dst, _ := net.ParseCIDR(half)
		if err := netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("192.0.2.1"), LinkIndex: up.Attrs().Index}); err != nil {
			t.Fatal(err)
		}
	}
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if err := tab.TunnelAll(); err == nil || !strings.Contains(err.Error(), "another VPN holds it") {
		t.Fatalf("TunnelAll over another VPN's routes: %v", err)
	}
}
