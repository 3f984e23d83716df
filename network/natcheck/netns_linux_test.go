package natcheck

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/internal/netnstest"
)

// The emulated internet of these tests: two STUN servers on different addresses of one bridge, a
// router with an nftables masquerade between it and a LAN, and a host on the LAN. Every address
// exists only inside the namespaces the test makes.
const (
	stunA, stunB = "198.18.0.1", "198.18.0.2"
	routerWAN    = "198.18.0.10"
	routerLAN    = "192.168.77.1"
	hostLAN      = "192.168.77.2"
	directHost   = "198.18.0.20"
)

// world builds the namespaces; masq is the router's masquerade statement ("" for no router: the host
// sits on the internet itself).
func world(t *testing.T, masq string) (internet, host string) {
	t.Helper()
	prefix := fmt.Sprintf("mvnat%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	names := []string{prefix + "i", prefix + "r", prefix + "h"}
	for _, n := range names {
		netnstest.Run(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		netnstest.Run(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	inet, router, lan := names[0], names[1], names[2]
	netnstest.Run(t, "ip", "-n", inet, "link", "add", "inet0", "type", "bridge")
	netnstest.Run(t, "ip", "-n", inet, "addr", "add", stunA+"/24", "dev", "inet0")
	netnstest.Run(t, "ip", "-n", inet, "addr", "add", stunB+"/24", "dev", "inet0")
	netnstest.Run(t, "ip", "-n", inet, "link", "set", "inet0", "up")
	if masq == "" {
		netnstest.Run(t, "ip", "link", "add", "hw", "netns", lan, "type", "veth", "peer", "name", "hp", "netns", inet)
		netnstest.Run(t, "ip", "-n", inet, "link", "set", "hp", "master", "inet0", "up")
		netnstest.Run(t, "ip", "-n", lan, "addr", "add", directHost+"/24", "dev", "hw")
		netnstest.Run(t, "ip", "-n", lan, "link", "set", "hw", "up")
		return inet, lan
	}
	netnstest.Run(t, "ip", "link", "add", "wan", "netns", router, "type", "veth", "peer", "name", "rp", "netns", inet)
	netnstest.Run(t, "ip", "-n", inet, "link", "set", "rp", "master", "inet0", "up")
	netnstest.Run(t, "ip", "-n", router, "addr", "add", routerWAN+"/24", "dev", "wan")
	netnstest.Run(t, "ip", "-n", router, "link", "set", "wan", "up")
	netnstest.Run(t, "ip", "link", "add", "lan", "netns", router, "type", "veth", "peer", "name", "eth", "netns", lan)
	netnstest.Run(t, "ip", "-n", router, "addr", "add", routerLAN+"/24", "dev", "lan")
	netnstest.Run(t, "ip", "-n", router, "link", "set", "lan", "up")
	netnstest.Run(t, "ip", "-n", lan, "addr", "add", hostLAN+"/24", "dev", "eth")
	netnstest.Run(t, "ip", "-n", lan, "link", "set", "eth", "up")
	netnstest.Run(t, "ip", "-n", lan, "route", "add", "default", "via", routerLAN)
	netnstest.Run(t, "ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := fmt.Sprintf("table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname \"wan\" %s\n }\n}\n", masq)
	netnstest.NFT(t, router, rules)
	return inet, lan
}

func detectIn(t *testing.T, masq string) Report {
	t.Helper()
	inet, host := world(t, masq)
	var servers []netip.AddrPort
	netnstest.In(t, inet, func() {
		servers = append(servers, stunServer(t, net.ParseIP(stunA)), stunServer(t, net.ParseIP(stunB)))
	})
	var c *net.UDPConn
	netnstest.In(t, host, func() {
		var err error
		if c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 40000}); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	p := socketProber(t, c)
	ip := hostLAN
	if masq == "" {
		ip = directHost
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := p.Detect(ctx, netip.AddrPortFrom(netip.MustParseAddr(ip), 40000), servers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDetectBehindEmulatedNATs(t *testing.T) {
	netnstest.Need(t)
	for _, tc := range []struct {
		name, masq string
		want       Mapping
	}{
		{"public", "", None},
		{"home NAT (masquerade)", "masquerade", EndpointIndependent},
		{"symmetric NAT (masquerade fully-random)", "masquerade random,fully-random", Dependent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := detectIn(t, tc.masq)
			if r.Mapping != tc.want {
				t.Fatalf("mapping %v, want %v (seen %v)", r.Mapping, tc.want, r.Seen)
			}
			if tc.masq != "" && r.Public.Addr() != netip.MustParseAddr(routerWAN) {
				t.Fatalf("public address %v, want the router's %s", r.Public, routerWAN)
			}
			t.Logf("%s: seen %v in %v", r.Mapping, r.Seen, r.RTT)
		})
	}
}
