package testnet

import (
	"context"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// downloadAcross runs a paced 10 MB download (about 5 s) through the tunnel, calls move 1.5 s into it,
// and returns the download's SHA-256 as sha256sum prints it and the longest stretch in which the
// client's received bytes did not grow, from the move on.
func downloadAcross(t *testing.T, ctx context.Context, n *Net, move func() error) (string, time.Duration) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		out, err := n.InClient("sh", "-c", "curl -sS --max-time 60 'http://"+WebAddr+"/big?rate=2000000' | sha256sum")
		if err != nil {
			out = "error: " + err.Error()
		}
		done <- out
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := move(); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	var last uint64
	lastAt, stall := moved, time.Duration(0)
	for {
		select {
		case out := <-done:
			return out, stall
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the download never finished")
		}
		s, err := n.Status(ctx)
		if err != nil {
			continue
		}
		if now := time.Now(); s.Traffic.BytesIn != last {
			last, lastAt = s.Traffic.BytesIn, now
		} else {
			stall = max(stall, now.Sub(lastAt))
		}
	}
}

// TestRoamingMidDownload: the client's outer address changes during a download — a new address on
// the same interface (a DHCP lease that changed), directly on the internet and behind a home router
// (where the router's mapping changes with it). The client's links send from the new address, the
// guard's link follows the authenticated packets there (network/link roaming), the circuit and the
// exit session are untouched, and the download finishes with the right checksum over the same TCP
// connection. The longest stall after the move is logged (the figure the issue asks for).
func TestRoamingMidDownload(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		name string
		nat  NATKind
	}{{"direct", ""}, {"home NAT", HomeNAT}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			o := Options{}
			if c.nat != "" {
				o.NAT = map[string]NATKind{"cl": c.nat}
			}
			n := start(t, ctx, o)
			dev, old, next := "ecl", ClientAddr, "10.240.0.101"
			if c.nat != "" {
				_, lan := lanPrefix(n.routers)
				dev, old = "eth0", lan.String()
				a := lan.As4()
				a[3]++
				next = netip.AddrFrom4(a).String()
			}
			before, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, stall := downloadAcross(t, ctx, n, func() error {
				// The new address first, then the old one goes: secondaries are promoted, so the
				// routes through the interface stay (as a DHCP client renumbering does).
				for _, args := range [][]string{
					{"sysctl", "-qw", "net.ipv4.conf." + dev + ".promote_secondaries=1"},
					{"ip", "addr", "add", next + "/24", "dev", dev},
					{"ip", "addr", "del", old + "/24", "dev", dev},
				} {
					if _, err := n.InClient(args...); err != nil {
						return err
					}
				}
				return nil
			})
			want := n.Web.BigSum()
			if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
				t.Fatalf("download across the address change: %q, want %x\nclient log:\n%s", out, want, tail(n.Log("client"), 30))
			}
			after, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s → %s mid-download: checksum matches; longest stall after the move %v (status polled every 50 ms); reroutes %d → %d",
				c.name, old, next, stall.Round(10*time.Millisecond), len(before.Reroutes), len(after.Reroutes))
			if after.State != "connected" || len(after.Reroutes) != len(before.Reroutes) {
				t.Fatalf("state %s after roaming, reroutes %+v: the circuit should have lived on", after.State, after.Reroutes)
			}
		})
	}
}

// secondUplink gives the client's namespace a second way to the internet, not yet in use: an interface
// eth1 to a home router of its own (another LAN, another public address), as a laptop's Ethernet
// beside its Wi-Fi.
func secondUplink(t *testing.T, n *Net) (dev, gateway string) {
	t.Helper()
	hub := n.ns[0]
	gw, err := n.namespace("cl2gw")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.plug(gw, hub, "br0", "cl2", netip.MustParsePrefix("10.240.0.102/24")); err != nil {
		t.Fatal(err)
	}
	if _, err := sh("ip", "link", "add", "lan", "netns", gw.name, "type", "veth", "peer", "name", "eth1", "netns", n.cl.name); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns   *namespace
		args []string
	}{
		{gw, []string{"ip", "addr", "add", "192.168.150.1/24", "dev", "lan"}},
		{gw, []string{"ip", "link", "set", "lan", "up"}},
		{gw, []string{"sysctl", "-qw", "net.ipv4.ip_forward=1"}},
		{n.cl, []string{"ip", "addr", "add", "192.168.150.2/24", "dev", "eth1"}},
		{n.cl, []string{"ip", "link", "set", "eth1", "up"}},
	} {
		if _, err := c.ns.exec(c.args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gw.execStdin("table ip testnat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname != \"lan\" masquerade\n }\n}\n", "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	return "eth1", "192.168.150.1"
}

// TestRoamingToAnotherInterface: behind a home router, the client's Wi-Fi goes away mid-download and
// its Ethernet (another router, another public address) takes over the default route. The download
// finishes with the right checksum on the same circuit through the same guard.
func TestRoamingToAnotherInterface(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NAT: map[string]NATKind{"cl": HomeNAT}})
	dev, gateway := secondUplink(t, n)
	before, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, stall := downloadAcross(t, ctx, n, func() error {
		for _, args := range [][]string{
			{"ip", "route", "replace", "default", "via", gateway, "dev", dev},
			{"ip", "link", "del", "eth0"},
		} {
			if _, err := n.InClient(args...); err != nil {
				return err
			}
		}
		return nil
	})
	want := n.Web.BigSum()
	after, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Wi-Fi gone, Ethernet in: longest stall after the move %v; reroutes %d → %d %+v; guard %s → %s",
		stall.Round(10*time.Millisecond), len(before.Reroutes), len(after.Reroutes), after.Reroutes,
		n.NameOf(before.Circuit.Hops[0].Identity), n.NameOf(after.Circuit.Hops[0].Identity))
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("download across the interface change: %q, want %x\nclient log:\n%s", out, want, tail(n.Log("client"), 30))
	}
	// The bypass route to the guard went with the Wi-Fi; the client put it back through the Ethernet
	// (network/route follows the host's network) before its link was declared dead: same circuit, same
	// guard. Without that, the link died and the client moved to another guard.
	if len(after.Reroutes) != len(before.Reroutes) || after.Circuit.Hops[0].Identity != before.Circuit.Hops[0].Identity {
		t.Fatalf("the interface change cost the circuit: reroutes %+v, guard %s → %s", after.Reroutes,
			n.NameOf(before.Circuit.Hops[0].Identity), n.NameOf(after.Circuit.Hops[0].Identity))
	}
}
