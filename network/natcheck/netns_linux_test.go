package natcheck

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
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

func need(t *testing.T) {
	t.Helper()
	_, ipErr := exec.LookPath("ip")
	_, nftErr := exec.LookPath("nft")
	if os.Geteuid() == 0 && ipErr == nil && nftErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root, iproute2 and nftables, and CI must run it")
	}
	t.Skip("needs root, iproute2 and nftables")
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// world builds the namespaces; masq is the router's masquerade statement ("" for no router: the host
// sits on the internet itself).
func world(t *testing.T, masq string) (internet, host string) {
	t.Helper()
	prefix := fmt.Sprintf("mvnat%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	names := []string{prefix + "i", prefix + "r", prefix + "h"}
	for _, n := range names {
		run(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		run(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	inet, router, lan := names[0], names[1], names[2]
	run(t, "ip", "-n", inet, "link", "add", "inet0", "type", "bridge")
	run(t, "ip", "-n", inet, "addr", "add", stunA+"/24", "dev", "inet0")
	run(t, "ip", "-n", inet, "addr", "add", stunB+"/24", "dev", "inet0")
	run(t, "ip", "-n", inet, "link", "set", "inet0", "up")
	if masq == "" {
		run(t, "ip", "link", "add", "hw", "netns", lan, "type", "veth", "peer", "name", "hp", "netns", inet)
		run(t, "ip", "-n", inet, "link", "set", "hp", "master", "inet0", "up")
		run(t, "ip", "-n", lan, "addr", "add", directHost+"/24", "dev", "hw")
		run(t, "ip", "-n", lan, "link", "set", "hw", "up")
		return inet, lan
	}
	run(t, "ip", "link", "add", "wan", "netns", router, "type", "veth", "peer", "name", "rp", "netns", inet)
	run(t, "ip", "-n", inet, "link", "set", "rp", "master", "inet0", "up")
	run(t, "ip", "-n", router, "addr", "add", routerWAN+"/24", "dev", "wan")
	run(t, "ip", "-n", router, "link", "set", "wan", "up")
	run(t, "ip", "link", "add", "lan", "netns", router, "type", "veth", "peer", "name", "eth", "netns", lan)
	run(t, "ip", "-n", router, "addr", "add", routerLAN+"/24", "dev", "lan")
	run(t, "ip", "-n", router, "link", "set", "lan", "up")
	run(t, "ip", "-n", lan, "addr", "add", hostLAN+"/24", "dev", "eth")
	run(t, "ip", "-n", lan, "link", "set", "eth", "up")
	run(t, "ip", "-n", lan, "route", "add", "default", "via", routerLAN)
	run(t, "ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := fmt.Sprintf("table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname \"wan\" %s\n }\n}\n", masq)
	cmd := exec.Command("ip", "netns", "exec", router, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	return inet, lan
}

// in runs f on a thread inside the named namespace; sockets f makes stay there.
func in(t *testing.T, name string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		f()
	}()
	<-done
}

func detectIn(t *testing.T, masq string) Report {
	t.Helper()
	inet, host := world(t, masq)
	var servers []netip.AddrPort
	in(t, inet, func() {
		servers = append(servers, stunServer(t, net.ParseIP(stunA)), stunServer(t, net.ParseIP(stunB)))
	})
	var c *net.UDPConn
	in(t, host, func() {
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
	need(t)
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
