package firewall

import (
	"net/netip"
	"strings"
	"testing"
)

// TestKillSwitchSplitExclude: a range excluded from the tunnel is let through both ways (UDP from any
// port, TCP), DNS to it excepted; nothing else is; SetExclude moves the hole in one batch.
func TestKillSwitchSplitExclude(t *testing.T) {
	h := newHost(t)
	relay := h.listenUDP(netip.AddrPortFrom(h.relay, 9000))
	relayDNS := h.listenUDP(netip.AddrPortFrom(h.relay, 53))
	h.listenTCP(netip.AddrPortFrom(h.relay, 8080))
	lan := h.listenUDP(netip.AddrPortFrom(h.lan, 9000))
	h.listenTCP(netip.AddrPortFrom(h.lan, 8080))

	k, err := Arm(Config{TUN: tunName, NetNSFd: h.fd, Exclude: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.0/25"), // one inside the other
		netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("2001:db8::/32")}})
	if err != nil {
		t.Fatal(err)
	}
	if !h.udp(0, relay) || !h.tcp(netip.AddrPortFrom(h.relay, 8080)) {
		t.Error("the excluded range was blocked")
	}
	if h.udp(0, relayDNS) {
		t.Error("DNS to an excluded range got out")
	}
	if h.udp(0, lan) || h.tcp(netip.AddrPortFrom(h.lan, 8080)) {
		t.Error("an address outside the excluded ranges got out")
	}
	if rs := h.ruleset(); !strings.Contains(rs, "192.0.2.0/24") || !strings.Contains(rs, "2001:db8::/32") {
		t.Errorf("the excluded ranges are not in the table:\n%s", rs)
	}

	if err := k.SetExclude([]netip.Prefix{netip.MustParsePrefix("192.168.77.0/24")}); err != nil {
		t.Fatal(err)
	}
	if h.udp(0, relay) || h.tcp(netip.AddrPortFrom(h.relay, 8080)) {
		t.Error("a range no longer excluded still got out")
	}
	if !h.udp(0, lan) || !h.tcp(netip.AddrPortFrom(h.lan, 8080)) {
		t.Error("the newly excluded range was blocked")
	}
	if err := k.SetExclude(nil); err != nil {
		t.Fatal(err)
	}
	if h.udp(0, lan) {
		t.Error("with nothing excluded, the LAN got out")
	}
}

// TestKillSwitchSplitInclude: in include mode every address but the included ranges is let through
// (DNS excepted); the included ones only through the tunnel.
func TestKillSwitchSplitInclude(t *testing.T) {
	h := newHost(t)
	relay := h.listenUDP(netip.AddrPortFrom(h.relay, 9000))
	h.listenTCP(netip.AddrPortFrom(h.relay, 8080))
	lan := h.listenUDP(netip.AddrPortFrom(h.lan, 9000))
	lanDNS := h.listenUDP(netip.AddrPortFrom(h.lan, 53))
	h.listenTCP(netip.AddrPortFrom(h.lan, 8080))
	far := h.listenUDP(netip.AddrPortFrom(h.tunnel, 9000))

	if _, err := Arm(Config{TUN: tunName, NetNSFd: h.fd, Include: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if h.udp(0, relay) || h.tcp(netip.AddrPortFrom(h.relay, 8080)) {
		t.Error("an included range got out around the tunnel")
	}
	if !h.udp(0, lan) || !h.tcp(netip.AddrPortFrom(h.lan, 8080)) {
		t.Error("an address not included was blocked")
	}
	if h.udp(0, lanDNS) {
		t.Error("DNS around the tunnel got out in include mode")
	}
	if !h.udp(0, far) {
		t.Error("the tunnel was blocked")
	}
}
