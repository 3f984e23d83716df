package policy

import (
	"slices"
	"testing"
)

func TestSummary(t *testing.T) {
	cases := []struct{ rules, want string }{
		{"accept *:*", "tcp=1-65535 udp=1-65535"},
		{"", "tcp=none udp=none"},
		{"reject *:25, accept *:*", "tcp=1-24,26-65535 udp=1-24,26-65535"},
		{"accept *:80/tcp, accept *:443, accept *:53/udp, reject *:*", "tcp=80,443 udp=53,443"},
		{"accept *:*/icmp, accept *:22/tcp", "tcp=22 udp=none"},
		// Rules about narrow prefixes do not count, whichever way they go.
		{"reject 1.2.3.0/24:*, accept 5.6.7.8:25, accept *:22/tcp", "tcp=22 udp=none"},
		// Nor do IPv6-only rules; 0.0.0.0/0 and *4 do.
		{"accept *6:*, accept *4:443/tcp", "tcp=443 udp=none"},
		{"reject 0.0.0.0/0:1-1023/udp, accept 0.0.0.0/0:*", "tcp=1-65535 udp=1024-65535"},
		// First match per port, and ranges merge across rules.
		{"accept *:100-200, reject *:150-300, accept *:201-400", "tcp=100-200,301-400 udp=100-200,301-400"},
		{"accept *:1-63/tcp, accept *:64/tcp, accept *:65-128/tcp, accept *:65535/udp", "tcp=1-128 udp=65535"},
		{"accept *:1/tcp, accept *:3/tcp", "tcp=1,3 udp=none"},
	}
	for _, c := range cases {
		p, err := New(Config{Rules: c.rules})
		if err != nil {
			t.Fatal(err)
		}
		s := p.Summary()
		if got := s.String(); got != c.want {
			t.Errorf("rules %q: summary %q, want %q", c.rules, got, c.want)
		}
		back, err := ParsePortSummary(s.String())
		if err != nil {
			t.Errorf("ParsePortSummary(%q): %v", s, err)
			continue
		}
		if !slices.Equal(back.TCP, s.TCP) || !slices.Equal(back.UDP, s.UDP) {
			t.Errorf("round trip %q gave %q", s, back)
		}
	}
}

func TestSummaryAllows(t *testing.T) {
	s, err := ParsePortSummary("tcp=22,80,443,1000-2000,65535 udp=none")
	if err != nil {
		t.Fatal(err)
	}
	for port, want := range map[uint16]bool{
		0: false, 21: false, 22: true, 23: false, 80: true, 443: true, 999: false,
		1000: true, 1500: true, 2000: true, 2001: false, 65534: false, 65535: true,
	} {
		if got := SummaryAllows(s, ProtoTCP, port); got != want {
			t.Errorf("Allows(tcp, %d) = %v, want %v", port, got, want)
		}
		if SummaryAllows(s, ProtoUDP, port) {
			t.Errorf("Allows(udp, %d) with no UDP ports", port)
		}
	}
	if SummaryAllows(s, ProtoICMP, 0) || SummaryAllows(s, ProtoICMP, 22) {
		t.Error("Allows(icmp) = true: ICMP is not summarized")
	}
	// The summary agrees with Decide for public addresses when all rules are wildcards.
	p, err := New(Config{Rules: "reject *:25, accept *:20-30/tcp, accept *:53/udp, reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	sum := p.Summary()
	for _, proto := range []Proto{ProtoTCP, ProtoUDP} {
		for port := range uint16(100) {
			if port == 0 {
				continue
			}
			d := p.Decide(mustAddr("93.184.216.34"), proto, port)
			if d.Allow != SummaryAllows(sum, proto, port) {
				t.Errorf("%v/%d: Decide %v, summary %v", proto, port, d.Allow, SummaryAllows(sum, proto, port))
			}
		}
	}
}

func TestParsePortSummaryRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"tcp=80",
		"tcp=80 udp=53 sctp=1",
		"udp=53 tcp=80",
		"tcp=80  udp=53",
		"tcp= udp=none",
		"tcp=0 udp=none",
		"tcp=080 udp=none",
		"tcp=+80 udp=none",
		"tcp=65536 udp=none",
		"tcp=80,80 udp=none",
		"tcp=81,80 udp=none",
		"tcp=80,81 udp=none",
		"tcp=80-81,82 udp=none",
		"tcp=80-80 udp=none",
		"tcp=90-80 udp=none",
		"tcp=80, udp=none",
		"tcp=,80 udp=none",
		"tcp=none,80 udp=none",
		"tcp=80-90-100 udp=none",
		"TCP=80 udp=none",
		"tcp=80 udp=none ",
	} {
		if got, err := ParsePortSummary(s); err == nil {
			t.Errorf("ParsePortSummary(%q) = %v, want error", s, got)
		}
	}
}
