package policy

import (
	"net/netip"
	"testing"
)

// decideAll checks Decide for TCP port 443 to each address against the wanted reason.
func decideAll(t *testing.T, p *Policy, cases map[string]Reason) {
	t.Helper()
	for addr, want := range cases {
		got := p.Decide(netip.MustParseAddr(addr), ProtoTCP, 443)
		if got.Reason != want || got.Allow != (want == Allowed) {
			t.Errorf("Decide(%s) = %+v (%v), want %v", addr, got, got.Reason, want)
		}
	}
}

func TestBuiltinRanges(t *testing.T) {
	decideAll(t, Default(), map[string]Reason{
		"0.0.0.0":         Reserved,
		"0.255.255.255":   Reserved,
		"1.0.0.0":         Allowed,
		"9.255.255.255":   Allowed,
		"10.0.0.0":        Private,
		"10.255.255.255":  Private,
		"11.0.0.0":        Allowed,
		"100.63.255.255":  Allowed,
		"100.64.0.0":      CGNAT,
		"100.127.255.255": CGNAT,
		"100.128.0.0":     Allowed,
		"126.255.255.255": Allowed,
		"127.0.0.0":       Loopback,
		"127.0.0.1":       Loopback,
		"127.255.255.255": Loopback,
		"128.0.0.0":       Allowed,
		"169.253.255.255": Allowed,
		"169.254.0.0":     LinkLocal,
		"169.254.255.255": LinkLocal,
		"169.255.0.0":     Allowed,
		"172.15.255.255":  Allowed,
		"172.16.0.0":      Private,
		"172.31.255.255":  Private,
		"172.32.0.0":      Allowed,
		"192.167.255.255": Allowed,
		"192.168.0.0":     Private,
		"192.168.255.255": Private,
		"192.169.0.0":     Allowed,
		"223.255.255.255": Allowed,
		"224.0.0.0":       Multicast,
		"239.255.255.255": Multicast,
		"240.0.0.0":       Reserved,
		"255.255.255.254": Reserved,
		"255.255.255.255": Reserved,
		"8.8.8.8":         Allowed,

		"169.254.169.254": Metadata,
		"169.254.170.2":   Metadata,
		"169.254.170.23":  Metadata,
		"100.100.100.200": Metadata,
		"168.63.129.16":   Metadata,
		"168.63.129.17":   Allowed,

		"::":          Reserved,
		"::1":         Loopback,
		"::2":         Reserved,
		"::a00:1":     Reserved, // IPv4-compatible ::10.0.0.1
		"::ffff:ffff": Reserved,
		"::1:0:0":     Allowed,
		"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": Allowed,
		"fc00::": Private,
		"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": Private,
		"fe00::": Allowed,
		"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff": Allowed,
		"fe80::": LinkLocal,
		"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff": LinkLocal,
		"fec0::": Private,
		"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": Private,
		"ff00::":  Multicast,
		"ff02::1": Multicast,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": Multicast,
		"fd00:ec2::254":                      Metadata,
		"fd00:ec2::23":                       Metadata,
		"fd00:ec2::253":                      Private,
		"64:ff9b:1::":                        Private,
		"64:ff9b:1:ffff:ffff:ffff:ffff:ffff": Private,
		"64:ff9b:2::":                        Allowed,
		"2001:4860:4860::8888":               Allowed,

		// IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry.
		"::ffff:127.0.0.1":         Loopback,
		"::ffff:10.1.2.3":          Private,
		"::ffff:172.32.0.0":        Allowed,
		"::ffff:100.64.0.1":        CGNAT,
		"::ffff:169.254.169.254":   Metadata,
		"::ffff:224.0.0.1":         Multicast,
		"::ffff:0.0.0.0":           Reserved,
		"::ffff:8.8.8.8":           Allowed,
		"64:ff9b::127.0.0.1":       Loopback,
		"64:ff9b::192.168.1.1":     Private,
		"64:ff9b::100.127.0.1":     CGNAT,
		"64:ff9b::a9fe:a9fe":       Metadata, // 169.254.169.254
		"64:ff9b::169.254.1.1":     LinkLocal,
		"64:ff9b::255.255.255.255": Reserved,
		"64:ff9b::8.8.8.8":         Allowed,
		"64:ff9b::1:8.8.8.8":       Allowed, // outside the /96: a plain IPv6 address

		// A zone must not hide an address from the prefix checks.
		"fe80::1%eth0":     LinkLocal,
		"::1%lo":           Loopback,
		"fd00::1%eth0":     Private,
		"2001:db8::1%eth0": Allowed,
	})
}

func TestInvalidAddressRefused(t *testing.T) {
	if d := Default().Decide(netip.Addr{}, ProtoTCP, 80); d.Allow || d.Reason != Reserved {
		t.Fatalf("Decide(zero Addr) = %+v", d)
	}
}

func TestAllowPrivate(t *testing.T) {
	p, err := New(Config{Rules: "accept *:*", AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	decideAll(t, p, map[string]Reason{
		"10.0.0.1":           Allowed,
		"172.16.5.5":         Allowed,
		"192.168.1.1":        Allowed,
		"100.64.0.1":         Allowed,
		"fd12:3456::1":       Allowed,
		"fec0::1":            Allowed,
		"64:ff9b:1::1":       Allowed,
		"64:ff9b::10.0.0.1":  Allowed,
		"::ffff:192.168.0.1": Allowed,
		// Still refused: not private networks, or never liftable.
		"127.0.0.1":       Loopback,
		"::1":             Loopback,
		"169.254.1.1":     LinkLocal,
		"fe80::1":         LinkLocal,
		"169.254.169.254": Metadata,
		"100.100.100.200": Metadata,
		"fd00:ec2::254":   Metadata,
		"224.0.0.1":       Multicast,
		"255.255.255.255": Reserved,
	})
}

func TestAllowLocal(t *testing.T) {
	own := netip.MustParseAddr("203.0.113.5")
	ownPrivate := netip.MustParseAddr("10.1.1.1")
	p, err := New(Config{Rules: "accept *:*", AllowLocal: true, Own: []netip.Addr{own, ownPrivate}})
	if err != nil {
		t.Fatal(err)
	}
	decideAll(t, p, map[string]Reason{
		"127.0.0.1":        Allowed,
		"127.1.2.3":        Allowed,
		"::1":              Allowed,
		"::ffff:127.0.0.1": Allowed,
		"203.0.113.5":      Allowed,
		// Each protection is lifted only by its own flag: the exit's private address stays private.
		"10.1.1.1":        Private,
		"192.168.1.1":     Private,
		"169.254.169.254": Metadata,
		"169.254.1.1":     LinkLocal,
		"fe80::1":         LinkLocal,
		"0.0.0.0":         Reserved,
		"::":              Reserved,
		"ff02::1":         Multicast,
	})
}

func TestMetadataAlwaysRefused(t *testing.T) {
	p, err := New(Config{Rules: "accept *:*", AllowPrivate: true, AllowLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	decideAll(t, p, map[string]Reason{
		"169.254.169.254":        Metadata,
		"::ffff:169.254.169.254": Metadata,
		"64:ff9b::a9fe:a9fe":     Metadata,
		"169.254.170.2":          Metadata,
		"100.100.100.200":        Metadata,
		"168.63.129.16":          Metadata,
		"fd00:ec2::254":          Metadata,
		"169.254.0.1":            LinkLocal,
		"10.0.0.1":               Allowed,
		"127.0.0.1":              Allowed,
	})
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := Allowed; r <= DefaultReject; r++ {
		s := r.String()
		if s == "" || seen[s] {
			t.Errorf("Reason %d: name %q empty or repeated", r, s)
		}
		seen[s] = true
	}
	if got := Reason(0).String(); got != "Reason(0)" {
		t.Errorf("Reason(0).String() = %q", got)
	}
	if got := Reason(200).String(); got != "Reason(200)" {
		t.Errorf("Reason(200).String() = %q", got)
	}
}
