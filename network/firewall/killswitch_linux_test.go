package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/network/internal/netnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// host is the namespace under test ("the client's computer") and its one neighbour, which stands for
// the whole world: a relay (192.0.2.1), a LAN host (192.168.77.1) and, behind a second link the kill
// switch is told is the TUN, the tunnel's far end (198.51.100.1).
type host struct {
	t      *testing.T
	name   string // the host's namespace
	world  string // the neighbour's
	fd     int
	relay  netip.Addr
	lan    netip.Addr
	tunnel netip.Addr
}

const tunName = "mvfwtun"

func newHost(t *testing.T) *host {
	t.Helper()
	netnstest.Need(t)
	p := fmt.Sprintf("mvfw%d", os.Getpid()%100000)
	h := &host{t: t, name: p + "-host", world: p + "-world",
		relay: netip.MustParseAddr("192.0.2.1"), lan: netip.MustParseAddr("192.168.77.1"), tunnel: netip.MustParseAddr("198.51.100.1")}
	for _, ns := range []string{h.name, h.world} {
		netnstest.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		netnstest.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	netnstest.Run(t, "ip", "link", "add", "out0", "netns", h.name, "type", "veth", "peer", "name", "out1", "netns", h.world)
	netnstest.Run(t, "ip", "link", "add", tunName, "netns", h.name, "type", "veth", "peer", "name", "tun1", "netns", h.world)
	for _, c := range [][]string{
		{h.name, "addr", "add", "192.0.2.2/24", "dev", "out0"},
		{h.name, "addr", "add", "192.168.77.2/24", "dev", "out0"},
		{h.name, "addr", "add", "198.51.100.2/24", "dev", tunName},
		{h.world, "addr", "add", "192.0.2.1/24", "dev", "out1"},
		{h.world, "addr", "add", "192.168.77.1/24", "dev", "out1"},
		{h.world, "addr", "add", "198.51.100.1/24", "dev", "tun1"},
		{h.name, "link", "set", "out0", "up"}, {h.name, "link", "set", tunName, "up"},
		{h.world, "link", "set", "out1", "up"}, {h.world, "link", "set", "tun1", "up"},
	} {
		netnstest.Run(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	f, err := os.Open("/var/run/netns/" + h.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h.fd = int(f.Fd())
	return h
}

// listenUDP opens a UDP socket in the world at ap.
func (h *host) listenUDP(ap netip.AddrPort) *net.UDPConn {
	var c *net.UDPConn
	netnstest.In(h.t, h.world, func() {
		var err error
		if c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap)); err != nil {
			h.t.Error(err)
		}
	})
	if c == nil {
		h.t.FailNow()
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// listenTCP opens a TCP listener in the world at ap (the kernel completes handshakes without Accept).
func (h *host) listenTCP(ap netip.AddrPort) {
	var l net.Listener
	netnstest.In(h.t, h.world, func() {
		var err error
		if l, err = net.Listen("tcp", ap.String()); err != nil {
			h.t.Error(err)
		}
	})
	if l == nil {
		h.t.FailNow()
	}
	h.t.Cleanup(func() { l.Close() })
}

// udp sends one datagram from the host's local port (0: any) to the listener, and reports whether it
// arrived.
func (h *host) udp(from uint16, to *net.UDPConn) bool {
	h.t.Helper()
	msg := fmt.Sprintf("probe %d", time.Now().UnixNano())
	var sent bool
	netnstest.In(h.t, h.name, func() {
		c, err := net.ListenUDP("udp", &net.UDPAddr{Port: int(from)})
		if err != nil {
			h.t.Error(err)
			return
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort([]byte(msg), to.LocalAddr().(*net.UDPAddr).AddrPort())
		sent = err == nil
	})
	if !sent {
		return false // the output hook's drop fails the send at once (EPERM)
	}
	buf := make([]byte, 100)
	for {
		to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := to.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == msg {
			return true
		}
	}
}

// tcp reports whether a TCP connection from the host to ap gets through.
func (h *host) tcp(ap netip.AddrPort) bool {
	var ok bool
	netnstest.In(h.t, h.name, func() {
		c, err := net.DialTimeout("tcp", ap.String(), 700*time.Millisecond)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

func (h *host) ruleset() string {
	out, err := exec.Command("ip", "netns", "exec", h.name, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		h.t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

const testLinkPort = 40000

// TestKillSwitchAllowsOnlyWhatTheVPNNeeds arms the kill switch and checks what gets out: nothing at
// first but the TUN and loopback; the links from the link socket's port to an allowed peer once
// allowed, and only from that port; TCP to an allowed endpoint exactly while it is allowed; DNS
// through the TUN but not to a resolver outside it.
func TestKillSwitchAllowsOnlyWhatTheVPNNeeds(t *testing.T) {
	h := newHost(t)
	relayLink := h.listenUDP(netip.AddrPortFrom(h.relay, 7000))
	relayDNS := h.listenUDP(netip.AddrPortFrom(h.relay, 53))
	relayOther := h.listenUDP(netip.AddrPortFrom(h.relay, 9000))
	tunnelDNS := h.listenUDP(netip.AddrPortFrom(h.tunnel, 53))
	authority := netip.AddrPortFrom(h.relay, 8080)
	h.listenTCP(authority)
	h.listenTCP(netip.AddrPortFrom(h.relay, 853))

	if !h.udp(0, relayOther) || !h.tcp(authority) {
		t.Fatal("the test network does not carry traffic before the kill switch")
	}
	k, err := Arm(Config{TUN: tunName, NetNSFd: h.fd})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Check(Options{NetNSFd: h.fd}); err != nil || !s.Armed {
		t.Fatalf("Check after Arm: %+v, %v", s, err)
	}
	if h.udp(testLinkPort, relayLink) || h.udp(0, relayOther) || h.udp(0, relayDNS) || h.tcp(authority) {
		t.Error("traffic left before anything was allowed")
	}
	if !h.udp(0, tunnelDNS) {
		t.Error("DNS through the TUN was blocked")
	}
	var lo *net.UDPConn
	netnstest.In(t, h.name, func() { lo, _ = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) })
	if lo == nil {
		t.Fatal("no loopback socket")
	}
	defer lo.Close()
	if !h.udp(0, lo) {
		t.Error("loopback was blocked")
	}

	if err := k.AllowPeer(h.relay); err != nil {
		t.Fatal(err)
	}
	if h.udp(testLinkPort, relayLink) {
		t.Error("a peer was reachable before the link socket's port was allowed")
	}
	if err := k.AllowLinkPort(testLinkPort); err != nil {
		t.Fatal(err)
	}
	if !h.udp(testLinkPort, relayLink) {
		t.Error("the link to an allowed peer was blocked")
	}
	if h.udp(testLinkPort+1, relayLink) || h.udp(0, relayOther) {
		t.Error("a socket other than the link's reached the peer")
	}

	// An authority, allowed twice (two fetches at once) and revoked twice.
	for range 2 {
		if err := k.AllowTCP(authority); err != nil {
			t.Fatal(err)
		}
	}
	if !h.tcp(authority) {
		t.Error("an allowed TCP endpoint was blocked")
	}
	if h.tcp(netip.AddrPortFrom(h.relay, 853)) {
		t.Error("another port of the allowed TCP endpoint's host got through")
	}
	k.RevokeTCP(authority)
	if !h.tcp(authority) {
		t.Error("one revoke of two allows blocked the endpoint")
	}
	k.RevokeTCP(authority)
	if h.tcp(authority) {
		t.Error("a revoked TCP endpoint got through")
	}
	if n, err := k.Blocked(); err != nil || n == 0 {
		t.Errorf("blocked counter %d, %v", n, err)
	}
	if !strings.Contains(h.ruleset(), "table inet "+Table) {
		t.Errorf("no table %s in the ruleset:\n%s", Table, h.ruleset())
	}
}

// TestKillSwitchLAN: with AllowLAN the LAN is reachable, but not DNS on it; without, nothing on it.
func TestKillSwitchLAN(t *testing.T) {
	h := newHost(t)
	lanOther := h.listenUDP(netip.AddrPortFrom(h.lan, 9000))
	lanDNS := h.listenUDP(netip.AddrPortFrom(h.lan, 53))
	h.listenTCP(netip.AddrPortFrom(h.lan, 853))
	h.listenTCP(netip.AddrPortFrom(h.lan, 8080))
	internet := h.listenUDP(netip.AddrPortFrom(h.relay, 9000)) // 192.0.2.0/24: not a LAN range

	if _, err := Arm(Config{TUN: tunName, NetNSFd: h.fd}); err != nil {
		t.Fatal(err)
	}
	if h.udp(0, lanOther) || h.tcp(netip.AddrPortFrom(h.lan, 8080)) {
		t.Error("the LAN was reachable without allow_lan")
	}
	if _, err := Arm(Config{TUN: tunName, AllowLAN: true, NetNSFd: h.fd}); err != nil {
		t.Fatal(err)
	}
	if !h.udp(0, lanOther) || !h.tcp(netip.AddrPortFrom(h.lan, 8080)) {
		t.Error("allow_lan: the LAN was blocked")
	}
	if h.udp(0, lanDNS) || h.tcp(netip.AddrPortFrom(h.lan, 853)) {
		t.Error("allow_lan: DNS to a resolver on the LAN got out")
	}
	if h.udp(0, internet) {
		t.Error("allow_lan let a non-LAN address through")
	}
}

// TestKillSwitchRearmAndDisarm: a second Arm replaces the first table (a crashed daemon's) with a
// fresh one, whose sets start empty; Disarm removes every rule, and only then does traffic flow.
func TestKillSwitchRearmAndDisarm(t *testing.T) {
	h := newHost(t)
	relay := h.listenUDP(netip.AddrPortFrom(h.relay, 7000))
	k, err := Arm(Config{TUN: tunName, NetNSFd: h.fd})
	if err != nil {
		t.Fatal(err)
	}
	k.AllowLinkPort(testLinkPort)
	k.AllowPeer(h.relay)
	if !h.udp(testLinkPort, relay) {
		t.Fatal("the allowed link was blocked")
	}
	// The daemon dies: k is gone, the table is not. The next one arms over it.
	if _, err := Arm(Config{TUN: tunName, NetNSFd: h.fd}); err != nil {
		t.Fatalf("arming over a table left in place: %v", err)
	}
	if h.udp(testLinkPort, relay) {
		t.Error("the new table kept the old one's allowances")
	}
	if strings.Count(h.ruleset(), "table inet "+Table) != 1 {
		t.Errorf("want one table:\n%s", h.ruleset())
	}
	if ok, err := Disarm(Options{NetNSFd: h.fd}); !ok || err != nil {
		t.Fatalf("Disarm: %v, %v", ok, err)
	}
	if rs := h.ruleset(); strings.Contains(rs, Table) {
		t.Errorf("rules left after Disarm:\n%s", rs)
	}
	if s, err := Check(Options{NetNSFd: h.fd}); err != nil || s.Armed {
		t.Errorf("Check after Disarm: %+v, %v", s, err)
	}
	if !h.udp(0, relay) {
		t.Error("traffic blocked after Disarm")
	}
	if ok, err := Disarm(Options{NetNSFd: h.fd}); ok || err != nil {
		t.Errorf("Disarm with nothing armed: %v, %v", ok, err)
	}
}

func TestArmRefusesBadTUNName(t *testing.T) {
	for _, name := range []string{"", "a-name-far-too-long"} {
		if _, err := Arm(Config{TUN: name}); err == nil {
			t.Errorf("Arm accepted TUN name %q", name)
		}
	}
	var k KillSwitch
	if err := k.change(42, true); err == nil {
		t.Error("the kill switch took an element of no set")
	}
}

// TestKillSwitchForwarded: what the host forwards (a container behind it) goes into the TUN, and
// nowhere else.
func TestKillSwitchForwarded(t *testing.T) {
	h := newHost(t)
	ctr := h.name + "c"
	netnstest.Run(t, "ip", "netns", "add", ctr)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ctr).Run() })
	netnstest.Run(t, "ip", "link", "add", "ctr0", "netns", h.name, "type", "veth", "peer", "name", "eth0", "netns", ctr)
	for _, c := range [][]string{
		{h.name, "addr", "add", "10.77.0.1/24", "dev", "ctr0"}, {h.name, "link", "set", "ctr0", "up"},
		{ctr, "addr", "add", "10.77.0.2/24", "dev", "eth0"}, {ctr, "link", "set", "eth0", "up"}, {ctr, "link", "set", "lo", "up"},
		{ctr, "route", "add", "default", "via", "10.77.0.1"},
		{h.world, "route", "add", "10.77.0.0/24", "via", "192.0.2.2"},
	} {
		netnstest.Run(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	// The tunnel's far end sees the container's packets from the host's TUN address, as after the
	// masquerade a host does for its containers.
	netnstest.Run(t, "ip", "netns", "exec", h.name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	netnstest.NFT(t, h.name, "table ip ctrnat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname \""+tunName+"\" masquerade\n }\n}\n")
	internet := h.listenUDP(netip.AddrPortFrom(h.relay, 9000))
	tunnel := h.listenUDP(netip.AddrPortFrom(h.tunnel, 9000))
	send := func(to *net.UDPConn) bool {
		msg := fmt.Sprintf("from the container %d", time.Now().UnixNano())
		netnstest.In(t, ctr, func() {
			c, err := net.Dial("udp", to.LocalAddr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.Write([]byte(msg))
		})
		buf := make([]byte, 100)
		for {
			to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := to.ReadFromUDPAddrPort(buf)
			if err != nil {
				return false
			}
			if string(buf[:n]) == msg {
				return true
			}
		}
	}
	if !send(internet) || !send(tunnel) {
		t.Fatal("the host does not forward for its container before the kill switch")
	}
	if _, err := Arm(Config{TUN: tunName, NetNSFd: h.fd}); err != nil {
		t.Fatal(err)
	}
	if send(internet) {
		t.Error("the container's packet was forwarded around the tunnel")
	}
	if !send(tunnel) {
		t.Error("the container's packet into the tunnel was blocked")
	}
}
