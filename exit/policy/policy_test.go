package policy

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

type flow struct {
	dst   string
	proto Proto
	port  uint16
	want  Reason
}

func checkFlows(t *testing.T, rules string, flows []flow) {
	t.Helper()
	p, err := New(Config{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		d := p.Decide(netip.MustParseAddr(f.dst), f.proto, f.port)
		if d.Reason != f.want || d.Allow != (f.want == Allowed) {
			t.Errorf("rules %q: Decide(%s, %v, %d) = %v, want %v", rules, f.dst, f.proto, f.port, d.Reason, f.want)
		}
	}
}

func TestFirstMatchWins(t *testing.T) {
	checkFlows(t, "accept 1.2.3.4:80, reject 1.2.3.0/24:*, accept *:*", []flow{
		{"1.2.3.4", ProtoTCP, 80, Allowed},
		{"1.2.3.4", ProtoTCP, 81, RuleReject},
		{"1.2.3.5", ProtoTCP, 80, RuleReject},
		{"1.2.3.5", ProtoICMP, 0, RuleReject},
		{"1.2.4.1", ProtoUDP, 9, Allowed},
		{"2001:db8::1", ProtoTCP, 80, Allowed},
	})
	checkFlows(t, "reject *:*, accept *:80", []flow{
		{"1.2.3.4", ProtoTCP, 80, RuleReject},
	})
}

func TestDefaultReject(t *testing.T) {
	checkFlows(t, "", []flow{{"8.8.8.8", ProtoTCP, 443, DefaultReject}})
	checkFlows(t, "accept 1.1.1.1:53", []flow{
		{"1.1.1.1", ProtoUDP, 53, Allowed},
		{"1.1.1.2", ProtoUDP, 53, DefaultReject},
	})
	var zero Policy
	if d := zero.Decide(netip.MustParseAddr("8.8.8.8"), ProtoTCP, 443); d.Allow || d.Reason != DefaultReject {
		t.Errorf("zero Policy: %+v", d)
	}
}

func TestPortRangesAndProtocols(t *testing.T) {
	checkFlows(t, "accept *:6881-6889/tcp", []flow{
		{"8.8.8.8", ProtoTCP, 6880, DefaultReject},
		{"8.8.8.8", ProtoTCP, 6881, Allowed},
		{"8.8.8.8", ProtoTCP, 6885, Allowed},
		{"8.8.8.8", ProtoTCP, 6889, Allowed},
		{"8.8.8.8", ProtoTCP, 6890, DefaultReject},
		{"8.8.8.8", ProtoUDP, 6881, DefaultReject},
	})
	checkFlows(t, "accept *:80", []flow{
		{"8.8.8.8", ProtoTCP, 80, Allowed},
		{"8.8.8.8", ProtoUDP, 80, Allowed},
		// A rule that names ports says nothing about protocols without ports.
		{"8.8.8.8", ProtoICMP, 80, DefaultReject},
		{"8.8.8.8", 47, 80, DefaultReject},
	})
	checkFlows(t, "accept *:1-65535", []flow{
		{"8.8.8.8", ProtoTCP, 1, Allowed},
		{"8.8.8.8", ProtoTCP, 65535, Allowed},
		{"8.8.8.8", ProtoTCP, 0, DefaultReject},
		{"8.8.8.8", ProtoICMP, 0, DefaultReject},
	})
	checkFlows(t, "accept *:*/icmp", []flow{
		{"8.8.8.8", ProtoICMP, 0, Allowed},
		{"2001:db8::1", ProtoICMPv6, 0, Allowed},
		{"8.8.8.8", ProtoTCP, 80, DefaultReject},
	})
	checkFlows(t, "accept *:80/udp", []flow{
		{"8.8.8.8", ProtoUDP, 80, Allowed},
		{"8.8.8.8", ProtoTCP, 80, DefaultReject},
	})
	checkFlows(t, "accept *:*", []flow{
		{"8.8.8.8", 47, 0, Allowed}, // GRE: the wildcard covers protocols without ports
		{"8.8.8.8", ProtoTCP, 0, Allowed},
	})
}

func TestFamilies(t *testing.T) {
	checkFlows(t, "accept *4:*", []flow{
		{"8.8.8.8", ProtoTCP, 80, Allowed},
		{"2001:db8::1", ProtoTCP, 80, DefaultReject},
		{"::ffff:8.8.8.8", ProtoTCP, 80, Allowed},
		{"64:ff9b::8.8.8.8", ProtoTCP, 80, Allowed},
	})
	checkFlows(t, "accept *6:443", []flow{
		{"2001:db8::1", ProtoTCP, 443, Allowed},
		{"8.8.8.8", ProtoTCP, 443, DefaultReject},
		// NAT64 and mapped destinations are IPv4 destinations.
		{"64:ff9b::8.8.8.8", ProtoTCP, 443, DefaultReject},
		{"::ffff:8.8.8.8", ProtoTCP, 443, DefaultReject},
	})
	checkFlows(t, "reject 8.8.8.0/24:*, accept *:*", []flow{
		{"64:ff9b::8.8.8.8", ProtoTCP, 443, RuleReject},
		{"::ffff:8.8.8.8", ProtoTCP, 443, RuleReject},
		{"8.8.9.8", ProtoTCP, 443, Allowed},
	})
	checkFlows(t, "accept [2001:db8::/32]:443", []flow{
		{"2001:db8::1", ProtoTCP, 443, Allowed},
		{"2001:db8:ffff::1", ProtoTCP, 443, Allowed},
		{"2001:db9::1", ProtoTCP, 443, DefaultReject},
	})
}

func TestRulesStillApplyAfterFlags(t *testing.T) {
	p, err := New(Config{Rules: "reject 10.0.0.0/8:*, accept *:*", AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	decideAll(t, p, map[string]Reason{"10.1.1.1": RuleReject, "192.168.1.1": Allowed})
}

func TestOwnAndSetOwn(t *testing.T) {
	p, err := New(Config{Rules: "accept *:*", Own: []netip.Addr{
		netip.MustParseAddr("203.0.113.5"),
		netip.MustParseAddr("2001:db8::5"),
		netip.MustParseAddr("::ffff:198.51.100.1"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	decideAll(t, p, map[string]Reason{
		"203.0.113.5":          Own,
		"203.0.113.6":          Allowed,
		"::ffff:203.0.113.5":   Own,
		"64:ff9b::203.0.113.5": Own,
		"2001:db8::5":          Own,
		"2001:db8::5%eth0":     Own,
		"198.51.100.1":         Own,
		"198.51.100.7":         Allowed,
	})
	p.SetOwn([]netip.Addr{netip.MustParseAddr("198.51.100.7"), {}})
	decideAll(t, p, map[string]Reason{
		"203.0.113.5":  Allowed,
		"2001:db8::5":  Allowed,
		"198.51.100.7": Own,
	})
	p.SetOwn(nil)
	decideAll(t, p, map[string]Reason{"198.51.100.7": Allowed})
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{Rules: "accept *:0\nreject x:*", Own: []netip.Addr{{}, netip.MustParseAddr("1.2.3.4"), {}}})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"line 1", "line 2", "own address 0", "own address 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	p, err := New(Config{
		Rules: "reject *:25, accept [2001:db8::/32]:443/tcp, reject 8.8.4.0/24:*, accept *:*",
		Own:   []netip.Addr{netip.MustParseAddr("203.0.113.5")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dsts := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("64:ff9b::8.8.4.4"),
		netip.MustParseAddr("::ffff:10.0.0.1"),
		netip.MustParseAddr("203.0.113.5"),
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, d := range dsts {
			p.Decide(d, ProtoTCP, 443)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decide allocates %v times per run", allocs)
	}
}

func TestConcurrentSetOwn(t *testing.T) {
	p := Default()
	a, b := netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("203.0.113.6")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Exactly one of the two is own at any moment.
				da, db := p.Decide(a, ProtoTCP, 80), p.Decide(b, ProtoTCP, 80)
				if da.Reason != Own && da.Reason != Allowed || db.Reason != Own && db.Reason != Allowed {
					t.Errorf("unexpected decisions %v %v", da, db)
					return
				}
			}
		})
	}
	for i := range 2000 {
		if i%2 == 0 {
			p.SetOwn([]netip.Addr{a})
		} else {
			p.SetOwn([]netip.Addr{b})
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkDecide(b *testing.B) {
	p, err := New(Config{Rules: "reject *:25, reject 8.8.4.0/24:*, accept *:*"})
	if err != nil {
		b.Fatal(err)
	}
	dst := netip.MustParseAddr("93.184.216.34")
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(dst, ProtoTCP, 443)
	}
}

// The network's directory authorities are reached through every exit, whatever its rules and even in
// a private network, but only by TCP to exactly their address and port, and never on the exit host.
func TestDirectoryAuthoritiesAreCarried(t *testing.T) {
	p, err := New(Config{Rules: "accept *:80, reject *:*", Directory: []netip.AddrPort{
		netip.MustParseAddrPort("10.240.0.31:8080"), netip.MustParseAddrPort("198.51.100.7:443"),
		netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("[::ffff:192.0.2.9]:80"),
		netip.MustParseAddrPort("169.254.169.254:80"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetOwn([]netip.Addr{netip.MustParseAddr("192.0.2.9")})
	for _, f := range []flow{
		{"10.240.0.31", ProtoTCP, 8080, Directory},
		{"198.51.100.7", ProtoTCP, 443, Directory},
		{"10.240.0.31", ProtoUDP, 8080, Private},
		{"10.240.0.31", ProtoTCP, 8081, Private},
		{"10.240.0.32", ProtoTCP, 8080, Private},
		{"198.51.100.7", ProtoTCP, 444, RuleReject},
		{"127.0.0.1", ProtoTCP, 8080, Loopback},
		{"192.0.2.9", ProtoTCP, 80, Own},
		{"169.254.169.254", ProtoTCP, 80, Metadata},
	} {
		d := p.Decide(netip.MustParseAddr(f.dst), f.proto, f.port)
		if d.Reason != f.want || d.Allow != (f.want == Directory) {
			t.Errorf("Decide(%s, %v, %d) = %+v, want %v", f.dst, f.proto, f.port, d, f.want)
		}
	}
	if _, err := New(Config{Directory: []netip.AddrPort{{}, netip.MustParseAddrPort("1.2.3.4:0")}}); err == nil ||
		!strings.Contains(err.Error(), "directory authority 0") || !strings.Contains(err.Error(), "directory authority 1") {
		t.Fatalf("bad directory addresses: %v", err)
	}
}
