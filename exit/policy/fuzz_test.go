package policy

import (
	"net/netip"
	"slices"
	"testing"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"accept *:*",
		"reject *:25, accept *:80,accept *:443 # web\naccept *:*/icmp",
		"accept [2001:db8::/32]:443/tcp\nreject *4:6881-6889/udp",
		"accept 10.0.0.0/8:1-65535\nreject 1.2.3.4:*",
		"accept [::ffff:1.2.3.4]:*",
		"accept 2001:db8::1:80",
		"accept *:0-1",
		"",
	} {
		f.Add(s)
	}
	dsts := []netip.Addr{mustAddr("8.8.8.8"), mustAddr("2001:db8::1"), mustAddr("10.0.0.1")}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := Parse(text)
		if err != nil {
			return
		}
		p, err := New(Config{Rules: text})
		if err != nil {
			t.Fatalf("Parse accepted %q but New refused it: %v", text, err)
		}
		canonical := p.String()
		again, err := Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(String()) failed: %v\ninput %q\ncanonical %q", err, text, canonical)
		}
		if !slices.Equal(rules, again) {
			t.Fatalf("round trip changed the rules\ninput %q\ncanonical %q\n%v\n%v", text, canonical, rules, again)
		}
		q, _ := New(Config{Rules: canonical})
		if q.String() != canonical {
			t.Fatalf("String is not a fixed point: %q then %q", canonical, q.String())
		}
		for _, d := range dsts {
			for _, proto := range []Proto{ProtoTCP, ProtoUDP, ProtoICMP} {
				if p.Decide(d, proto, 443) != q.Decide(d, proto, 443) {
					t.Fatalf("%q and its canonical form decide %v differently", text, d)
				}
			}
		}
		for _, sum := range []PortSummary{p.Summary(), p.Summary6()} {
			if back, err := ParsePortSummary(sum.String()); err != nil || back.String() != sum.String() {
				t.Fatalf("summary %q does not round trip: %v", sum, err)
			}
		}
	})
}
