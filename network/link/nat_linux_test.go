package link

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/internal/netnstest"
)

var report = flag.Bool("report", false, "print the link setup times across emulated NATs (make bench)")

// The emulated internet of the NAT tests: a bridge with the rendezvous on it, and for each of the two
// nodes either an address on the bridge (public) or a router between the bridge and a LAN of its own,
// with a home NAT or a symmetric one. Every address exists only inside the namespaces the test makes.
//
// A router is what a home router is: a masquerade for the LAN, and a firewall that drops whatever new
// arrives from the internet. The drop matters: without it, Linux conntrack keeps an entry for a punch
// packet that arrives before the router's own host has sent anything to its source, and then gives
// that host's first packet to the peer a new port (a clash of tuples), so two bare masquerades can
// never be punched — while a real router drops such a packet before conntrack confirms an entry for it.
type natKind string

const (
	public    natKind = "public"
	homeNAT   natKind = "home NAT"
	symmetric natKind = "symmetric NAT"
)

const rendezvousIP = "198.18.0.1"

// natWorld is the namespaces of one test.
type natWorld struct {
	inet    string    // the internet's namespace, where the rendezvous runs
	hosts   [2]string // the two nodes' namespaces
	routers [2]string // their routers' namespaces ("" for a public node)
	wan     [2]string // the address each node is seen at on the internet
}

func newNATWorld(t testing.TB, kinds [2]natKind) *natWorld {
	t.Helper()
	prefix := fmt.Sprintf("mvpunch%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	add := func(name string) string {
		netnstest.Run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		netnstest.Run(t, "ip", "-n", name, "link", "set", "lo", "up")
		return name
	}
	w := &natWorld{inet: add(prefix + "i")}
	netnstest.Run(t, "ip", "-n", w.inet, "link", "add", "inet0", "type", "bridge")
	netnstest.Run(t, "ip", "-n", w.inet, "addr", "add", rendezvousIP+"/24", "dev", "inet0")
	netnstest.Run(t, "ip", "-n", w.inet, "link", "set", "inet0", "up")
	for i, kind := range kinds {
		w.hosts[i] = add(fmt.Sprintf("%sh%d", prefix, i))
		wan := fmt.Sprintf("198.18.0.%d", 10+i)
		w.wan[i] = wan
		port := fmt.Sprintf("p%d", i)
		if kind == public {
			netnstest.Run(t, "ip", "link", "add", "eth", "netns", w.hosts[i], "type", "veth", "peer", "name", port, "netns", w.inet)
			netnstest.Run(t, "ip", "-n", w.inet, "link", "set", port, "master", "inet0", "up")
			netnstest.Run(t, "ip", "-n", w.hosts[i], "addr", "add", wan+"/24", "dev", "eth")
			netnstest.Run(t, "ip", "-n", w.hosts[i], "link", "set", "eth", "up")
			continue
		}
		r := add(fmt.Sprintf("%sr%d", prefix, i))
		w.routers[i] = r
		lan := fmt.Sprintf("192.168.%d", 10+i)
		netnstest.Run(t, "ip", "link", "add", "wan", "netns", r, "type", "veth", "peer", "name", port, "netns", w.inet)
		netnstest.Run(t, "ip", "-n", w.inet, "link", "set", port, "master", "inet0", "up")
		netnstest.Run(t, "ip", "-n", r, "addr", "add", wan+"/24", "dev", "wan")
		netnstest.Run(t, "ip", "-n", r, "link", "set", "wan", "up")
		netnstest.Run(t, "ip", "link", "add", "lan", "netns", r, "type", "veth", "peer", "name", "eth", "netns", w.hosts[i])
		netnstest.Run(t, "ip", "-n", r, "addr", "add", lan+".1/24", "dev", "lan")
		netnstest.Run(t, "ip", "-n", r, "link", "set", "lan", "up")
		netnstest.Run(t, "ip", "-n", w.hosts[i], "addr", "add", lan+".2/24", "dev", "eth")
		netnstest.Run(t, "ip", "-n", w.hosts[i], "link", "set", "eth", "up")
		netnstest.Run(t, "ip", "-n", w.hosts[i], "route", "add", "default", "via", lan+".1")
		netnstest.Run(t, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		masq := "masquerade"
		if kind == symmetric {
			masq = "masquerade random,fully-random"
		}
		netnstest.NFT(t, r, fmt.Sprintf("table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname \"wan\" %s\n }\n"+
			" chain filter_in {\n  type filter hook input priority filter;\n  iifname \"wan\" ct state new drop\n }\n"+
			" chain filter_fwd {\n  type filter hook forward priority filter;\n  iifname \"wan\" ct state new drop\n }\n}\n", masq))
	}
	return w
}

// nodeIn starts a test node on port 40000 of every address of the namespace.
func nodeIn(t testing.TB, ns string, opts ...nodeOption) *testNode {
	t.Helper()
	var c *net.UDPConn
	netnstest.In(t, ns, func() {
		var err error
		if c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 40000}); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	opts = append(opts, withConfig(func(cfg *Config) {
		cfg.Conn.Close()
		cfg.Conn = c
	}))
	return newTestNode(t, opts...)
}

// testTraversal makes the punch window and retries short, so that the tests see every state soon.
var testTraversal = TraversalTimes{PunchWindow: 2 * time.Second, PunchRetry: time.Second}

// punchResult is what one pair of NATs gave.
type punchResult struct {
	usable, direct time.Duration // from DialVia's start; direct is zero if the link stayed relayed
	path           PathKind
}

// punchAcross links a node of kinds[0] to one of kinds[1] through a rendezvous on the internet and
// checks that messages cross both ways, relayed or direct.
func punchAcross(t *testing.T, kinds [2]natKind) (*natWorld, [3]*testNode, *Link, punchResult) {
	t.Helper()
	w := newNATWorld(t, kinds)
	trav := withConfig(func(c *Config) { c.Traversal = testTraversal })
	r := nodeIn(t, w.inet, trav, withConfig(func(c *Config) { c.Rendezvous = &RendezvousConfig{} }))
	a, b := nodeIn(t, w.hosts[0], trav), nodeIn(t, w.hosts[1], trav)
	rv := Rendezvous{Key: r.pub, Addr: netip.MustParseAddrPort(rendezvousIP + ":40000")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Register(ctx, rv, nil); err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg := r.Registered(); len(reg) != 1 || reg[0].Addr.Addr().String() != w.wan[1] {
		t.Fatalf("rendezvous sees %+v, want b at %s", reg, w.wan[1])
	}
	start := time.Now()
	l, err := a.DialVia(ctx, b.pub, rv)
	if err != nil {
		t.Fatalf("dial via: %v", err)
	}
	res := punchResult{usable: time.Since(start)}
	deadline := start.Add(testTraversal.PunchWindow + time.Second)
	for time.Now().Before(deadline) {
		bl := b.Link(a.pub)
		if l.Path().Kind == PathPunched && bl != nil && bl.Path().Kind == PathPunched {
			res.direct = time.Since(start)
			break
		}
		time.Sleep(time.Millisecond)
	}
	res.path = l.Path().Kind
	bl := b.peerLink(t, a.pub)
	if got := bl.Path().Kind; got != res.path {
		t.Fatalf("a's link is %v, b's %v", res.path, got)
	}
	exchangeBoth(t, a, b, l, bl, 200)
	return w, [3]*testNode{r, a, b}, l, res
}

// exchangeBoth sends count messages each way and fails unless every one arrives.
func exchangeBoth(t *testing.T, a, b *testNode, ab, ba *Link, count int) {
	t.Helper()
	for i := range count {
		msg := fmt.Appendf(nil, "a→b %d", i)
		if err := ab.Send(msg); err != nil {
			t.Fatal(err)
		}
		if d := b.recv(t); string(d.msg) != string(msg) {
			t.Fatalf("b got %q, want %q", d.msg, msg)
		}
		msg = fmt.Appendf(nil, "b→a %d", i)
		if err := ba.Send(msg); err != nil {
			t.Fatal(err)
		}
		if d := a.recv(t); string(d.msg) != string(msg) {
			t.Fatalf("a got %q, want %q", d.msg, msg)
		}
	}
}

func TestPunchAcrossEmulatedNATs(t *testing.T) {
	netnstest.Need(t)
	for _, tc := range []struct {
		kinds [2]natKind
		want  PathKind
	}{
		{[2]natKind{homeNAT, homeNAT}, PathPunched},
		{[2]natKind{public, homeNAT}, PathPunched},
		{[2]natKind{symmetric, public}, PathPunched},
		{[2]natKind{homeNAT, symmetric}, PathRelayed},
		{[2]natKind{symmetric, symmetric}, PathRelayed},
	} {
		t.Run(fmt.Sprintf("%s to %s", tc.kinds[0], tc.kinds[1]), func(t *testing.T) {
			_, nodes, _, res := punchAcross(t, tc.kinds)
			if res.path != tc.want {
				t.Fatalf("path %v, want %v", res.path, tc.want)
			}
			fw := nodes[0].Stats().RelayForwarded
			if tc.want == PathRelayed && fw < 400 {
				t.Fatalf("the rendezvous forwarded %d packets; 400 messages crossed through it", fw)
			}
			if tc.want == PathPunched && fw > 100 {
				t.Fatalf("the rendezvous forwarded %d packets of a punched link", fw)
			}
			t.Logf("usable after %v, direct after %v (%v)", res.usable, res.direct, res.path)
		})
	}
}

// A punched path that stops answering falls back to the relay within seconds, and comes back when the
// path does.
func TestPunchedPathFallsBackToRelay(t *testing.T) {
	netnstest.Need(t)
	w, nodes, l, res := punchAcross(t, [2]natKind{homeNAT, homeNAT})
	a, b := nodes[1], nodes[2]
	if res.path != PathPunched {
		t.Fatalf("path %v, want punched", res.path)
	}
	var sent, got atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a steady stream a → b, every 5 ms
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if l.Send([]byte("stream")) == nil {
				sent.Add(1)
			}
		}
	}()
	go func() {
		for {
			select {
			case <-b.msgs:
				got.Add(1)
			case <-stop:
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	cut := time.Now()
	netnstest.NFT(t, w.routers[0], fmt.Sprintf("table ip cut {\n chain filter_fwd {\n  type filter hook forward priority -10;\n  ip daddr %s drop\n  ip saddr %s drop\n }\n}\n", w.wan[1], w.wan[1]))
	eventually(t, 6*time.Second, func() bool { return l.Path().Kind == PathRelayed })
	fellBack := time.Since(cut)
	lostBefore := sent.Load() - got.Load()
	time.Sleep(500 * time.Millisecond)
	if delta := sent.Load() - got.Load() - lostBefore; delta > 5 {
		t.Fatalf("%d messages lost after the fallback", delta)
	}
	netnstest.Run(t, "ip", "netns", "exec", w.routers[0], "nft", "delete", "table", "ip", "cut")
	healed := time.Now()
	eventually(t, 6*time.Second, func() bool { return l.Path().Kind == PathPunched })
	close(stop)
	<-done
	t.Logf("fell back %v after the cut (%d messages lost meanwhile); direct again %v after the path healed", fellBack, lostBefore, time.Since(healed))
	if a.Stats().PathFallbacks < 1 || a.Stats().PathUpgrades < 2 {
		t.Fatalf("a's stats %+v: want a fallback and two upgrades", a.Stats())
	}
}

// TestReport measures the time to a usable link and to a direct one for each pair of NATs (make bench).
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("run with -args -report")
	}
	netnstest.Need(t)
	const runs = 5
	fmt.Println("link setup across emulated NATs (namespaces on one machine, no added latency), median of", runs)
	fmt.Printf("%-30s %-8s %12s %12s\n", "pair", "path", "usable", "direct")
	var plain []time.Duration
	for range runs {
		t.Run("plain dial", func(t *testing.T) {
			w := newNATWorld(t, [2]natKind{public, public})
			a, b := nodeIn(t, w.hosts[0]), nodeIn(t, w.hosts[1])
			start := time.Now()
			dialAt(t, a, netip.MustParseAddrPort(w.wan[1]+":40000"), b.pub)
			plain = append(plain, time.Since(start))
		})
	}
	fmt.Printf("%-30s %-8s %12s %12s\n", "public, dialled at its address", "direct", median(plain).Round(time.Microsecond), "-")
	for _, kinds := range [][2]natKind{{public, public}, {public, homeNAT}, {homeNAT, homeNAT}, {homeNAT, symmetric}, {symmetric, symmetric}} {
		var usable, direct []time.Duration
		var path PathKind
		for range runs {
			t.Run(fmt.Sprintf("%s to %s", kinds[0], kinds[1]), func(t *testing.T) {
				_, _, _, res := punchAcross(t, kinds)
				usable, direct, path = append(usable, res.usable), append(direct, res.direct), res.path
			})
		}
		d := "-"
		if path == PathPunched {
			d = median(direct).Round(time.Microsecond).String()
		}
		fmt.Printf("%-30s %-8s %12s %12s\n", fmt.Sprintf("%s ↔ %s", kinds[0], kinds[1]), path, median(usable).Round(time.Microsecond), d)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
