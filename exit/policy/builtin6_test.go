package policy

import (
	"net/netip"
	"testing"
)

// The IPv6 ranges that are not the internet, each refused as its IPv4 twin is (issue 13).
func TestBuiltinRangesIPv6(t *testing.T) {
	decideAll(t, Default(), map[string]Reason{
		"100::":                    Reserved, // discard-only
		"100::ffff:ffff:ffff:ffff": Reserved,
		"100:0:0:1::":              Allowed,
		"2001::1":                  Reserved, // Teredo
		"2001:0:ffff::":            Reserved,
		"2001:1::1":                Allowed,
		"5f00::1":                  Reserved, // SRv6 SIDs
		"5eff::1":                  Allowed,
		"::ffff:0:a00:1":           Reserved, // IPv4-translated 10.0.0.1
		"fd6d:7670::2":             Private,  // a client's inner ULA
		"fe80::1":                  LinkLocal,
		"ff02::fb":                 Multicast,
		"::1":                      Loopback,
		"2001:db8::10":             Allowed, // documentation, as 203.0.113.0/24 is: test networks' internet

		// 6to4 carries an IPv4 address, whose protections are its own.
		"2002:7f00:1::1":   Loopback,  // 127.0.0.1
		"2002:c0a8:101::":  Private,   // 192.168.1.1
		"2002:a9fe:a9fe::": Metadata,  // 169.254.169.254
		"2002:e000:1::":    Multicast, // 224.0.0.1
		"2002:808:808::1":  Allowed,   // 8.8.8.8
	})
}

func TestDecideIPv6RefusesIPv4InIPv6(t *testing.T) {
	p := Default()
	for addr, want := range map[string]Reason{
		"::ffff:8.8.8.8":       Reserved, // mapped: no IPv6 packet reaches it
		"::ffff:10.0.0.1":      Reserved,
		"8.8.8.8":              Reserved, // not IPv6 at all
		"::a00:1":              Reserved,
		"2606:4700::1111":      Allowed,
		"fd00::1":              Private,
		"64:ff9b::8.8.8.8":     Allowed, // NAT64: judged as 8.8.8.8, which a translator reaches
		"64:ff9b::192.168.0.1": Private,
	} {
		if d := p.DecideIPv6(netip.MustParseAddr(addr), ProtoTCP, 443); d.Reason != want || d.Allow != (want == Allowed) {
			t.Errorf("DecideIPv6(%s) = %v, want %v", addr, d.Reason, want)
		}
	}
	// Decide itself still judges a mapped address by its IPv4 (sockets name IPv4 hosts so).
	if d := p.Decide(netip.MustParseAddr("::ffff:8.8.8.8"), ProtoTCP, 443); !d.Allow {
		t.Errorf("Decide(::ffff:8.8.8.8) = %v", d.Reason)
	}
}

func TestSummary6(t *testing.T) {
	for _, c := range []struct{ rules, want4, want6 string }{
		{"accept *:*", "tcp=1-65535 udp=1-65535", "tcp=1-65535 udp=1-65535"},
		{"reject *6:*, accept *:*", "tcp=1-65535 udp=1-65535", "tcp=none udp=none"},
		{"accept *4:*", "tcp=1-65535 udp=1-65535", "tcp=none udp=none"},
		{"reject *:25, accept [::/0]:80-443/tcp, accept *4:*", "tcp=1-24,26-65535 udp=1-24,26-65535", "tcp=80-443 udp=none"},
		{"accept [2001:db8::/32]:*", "tcp=none udp=none", "tcp=none udp=none"}, // a narrower prefix does not count
	} {
		p, err := New(Config{Rules: c.rules})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Summary().String(); got != c.want4 {
			t.Errorf("%q: Summary %q, want %q", c.rules, got, c.want4)
		}
		if got := p.Summary6().String(); got != c.want6 {
			t.Errorf("%q: Summary6 %q, want %q", c.rules, got, c.want6)
		}
	}
}

// FuzzDecideIPv6 holds DecideIPv6's built-in protections to a plain reading of the tables with
// netip.Prefix.Contains (the precompiled masks are not the reference's), for any 16 bytes.
func FuzzDecideIPv6(f *testing.F) {
	for _, s := range []string{"fe80::1", "2002:7f00:1::", "::ffff:1.2.3.4", "64:ff9b::a00:1", "2606:4700::1", "fd00:ec2::254", "100::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	p := Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(b))
		want := Allowed
		switch judged := normalize(a); {
		case a.Is4In6():
			want = Reserved
		default:
			table := protected6
			if judged.Is4() {
				table = protected4
			}
			want = reference(table, judged)
			if v4, ok := embedded6to4(judged); ok && want == Allowed {
				want = reference(protected4, v4)
			}
		}
		if d := p.DecideIPv6(a, ProtoTCP, 443); d.Reason != want {
			t.Fatalf("DecideIPv6(%v) = %v, want %v", a, d.Reason, want)
		}
	})
}

func reference(table []protection, a netip.Addr) Reason {
	for _, pr := range table {
		if pr.src.Contains(a) {
			return pr.reason
		}
	}
	return Allowed
}
