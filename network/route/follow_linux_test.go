package route

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/meshvpn/meshvpn/network/tun"
)

// secondUplink makes another way out, up2 with 203.0.113.2/24 (its gateway .1), not the default yet:
// the laptop's Ethernet beside its Wi-Fi.
func secondUplink(t *testing.T) netlink.Link {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up2"}, PeerName: "up3"}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	if peer, err := netlink.LinkByName("up3"); err == nil {
		netlink.LinkSetUp(peer)
	}
	addr, _ := netlink.ParseAddr("203.0.113.2/24")
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBypassFollowsTheHostsNetwork: the interface a guard's bypass route went through goes away and
// the default route moves to another (Wi-Fi to Ethernet). The kernel drops the bypass route with its
// interface; the table puts it back through the new way out, so the guard's packets never fall into
// the tunnel; Close removes the new route too.
func TestBypassFollowsTheHostsNetwork(t *testing.T) {
	inNetns(t)
	wifi := uplink(t)
	dev, err := tun.Open(tun.Config{Name: "mvtest0", Addr: netip.MustParsePrefix("10.99.0.2/32"), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tab, err := New("mvtest0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.TunnelAll(); err != nil {
		t.Fatal(err)
	}
	guard := netip.MustParseAddr("198.51.100.7")
	if err := tab.Bypass(guard); err != nil {
		t.Fatal(err)
	}
	if dev, _ := via(t, guard.String()); dev != "up0" {
		t.Fatalf("the guard goes via %s", dev)
	}
	eth := secondUplink(t)
	if err := netlink.RouteReplace(&netlink.Route{Gw: net.ParseIP("203.0.113.1"), LinkIndex: eth.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(wifi); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		dev, gw := via(t, guard.String())
		if dev == "up2" && gw == "203.0.113.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the change the guard goes via %s (gateway %s), want up2 via 203.0.113.1", dev, gw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A change that leaves the bypass where it is changes nothing.
	added := func() int {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		return len(tab.added)
	}
	before := added()
	tab.refresh()
	if added() != before {
		t.Fatalf("a refresh with nothing to do added routes: %d, had %d", added(), before)
	}
	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	rs, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Dst != nil && r.Dst.IP.Equal(net.ParseIP(guard.String())) {
			t.Fatalf("Close left %v", r)
		}
	}
}
