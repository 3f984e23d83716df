package route

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/meshvpn/meshvpn/network/tun"
)

// splitTable opens a TUN and a table for it, on a host with the uplink of uplink().
func splitTable(t *testing.T) (*Table, netlink.Link) {
	t.Helper()
	inNetns(t)
	up := uplink(t)
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	return tab, up
}

func wantVia(t *testing.T, routes map[string]string) {
	t.Helper()
	for dst, want := range routes {
		if dev, gw := via(t, dst); dev != want {
			t.Errorf("%s goes via %s (gw %s), want %s", dst, dev, gw, want)
		}
	}
}

// An excluded range leaves through the host's own way out, the rest of the internet through the
// tunnel; the range follows the host's network when its way out changes, and goes with Close.
func TestExcludeKeepsARangeOutside(t *testing.T) {
	tab, wifi := splitTable(t)
	for _, p := range []string{"198.51.100.0/24", "203.0.113.128/25"} {
		if err := tab.Exclude(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	wantVia(t, map[string]string{"198.51.100.7": "up0", "198.51.100.255": "up0", "203.0.113.200": "up0",
		"203.0.113.9": "mvtest0", "198.51.101.1": "mvtest0", "8.8.8.8": "mvtest0"})
	if _, gw := via(t, "198.51.100.7"); gw != "192.0.2.1" {
		t.Errorf("the excluded range goes via %s, not the host's gateway", gw)
	}
	for _, bad := range []string{"0.0.0.0/0", "128.0.0.0/1"} {
		if err := tab.Exclude(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("excluded %s, which is a tunnel route's place", bad)
		}
	}

	// The host moves to another uplink: the range follows it.
	eth := secondUplink(t)
	if err := netlink.RouteReplace(&netlink.Route{Gw: net.ParseIP("203.0.113.1"), LinkIndex: eth.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(wifi); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if dev, gw := via(t, "198.51.100.7"); dev == "up2" && gw == "203.0.113.1" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the change the excluded range goes via %s (gateway %s), want up2 via 203.0.113.1", dev, gw)
		}
	}

	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	if rs, _ := netlink.RouteList(nil, netlink.FAMILY_V4); len(rs) > 0 {
		for _, r := range rs {
			if p, ok := prefixOf(r.Dst); r.Dst != nil && ok && p.Bits() == 24 && p.Addr() == netip.MustParseAddr("198.51.100.0") {
				t.Errorf("the excluded range's route outlived Close: %v", r)
			}
		}
	}
}

// In include mode only the named ranges go into the tunnel; the relays' bypasses still hold inside
// them.
func TestTunnelOnly(t *testing.T) {
	tab, _ := splitTable(t)
	if err := tab.Bypass(netip.MustParseAddr("198.51.100.7")); err != nil {
		t.Fatal(err)
	}
	if err := tab.TunnelOnly([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:5::/48")}); err != nil {
		t.Fatal(err)
	}
	wantVia(t, map[string]string{"198.51.100.9": "mvtest0", "198.51.100.7": "up0", "203.0.113.9": "up0", "8.8.8.8": "up0",
		"2001:db8:5::1": "mvtest0"})
	if err := tab.TunnelOnly([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); err == nil {
		t.Error("include 0.0.0.0/0 taken")
	}
}

// MarkOutside: marked packets find the host's way out (its default route, in a table of the
// client's), which follows the host to another uplink; Close takes the rules and the route away.
func TestMarkOutsideFollowsTheHost(t *testing.T) {
	tab, wifi := splitTable(t)
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	const mark, table = 0x6d760001, 0x6d76
	if err := tab.MarkOutside(mark, table); err != nil {
		t.Fatal(err)
	}
	if err := tab.MarkOutside(mark, table); err == nil {
		t.Error("MarkOutside twice")
	}
	markedVia := func() (string, string) {
		rs, err := netlink.RouteGetWithOptions(net.ParseIP("8.8.8.8"), &netlink.RouteGetOptions{Mark: mark})
		if err != nil || len(rs) == 0 {
			return "", ""
		}
		l, err := netlink.LinkByIndex(rs[0].LinkIndex)
		if err != nil {
			return "", ""
		}
		return l.Attrs().Name, rs[0].Gw.String()
	}
	if dev, gw := markedVia(); dev != "up0" || gw != "192.0.2.1" {
		t.Errorf("a marked packet goes via %s (gw %s), want up0 via 192.0.2.1", dev, gw)
	}
	if dev, _ := via(t, "8.8.8.8"); dev != "mvtest0" {
		t.Errorf("an unmarked packet goes via %s", dev)
	}
	eth := secondUplink(t)
	if err := netlink.RouteReplace(&netlink.Route{Gw: net.ParseIP("203.0.113.1"), LinkIndex: eth.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(wifi); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if dev, gw := markedVia(); dev == "up2" && gw == "203.0.113.1" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the change a marked packet goes via %q (gateway %s), want up2 via 203.0.113.1", dev, gw)
		}
	}
	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	rules, err := netlink.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Mark == mark {
			t.Errorf("Close left the rule %v", r)
		}
	}
	if rs, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE); len(rs) > 0 {
		t.Errorf("Close left %v", rs)
	}
}
