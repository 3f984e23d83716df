package exitports

import "testing"

func TestAllows(t *testing.T) {
	s, err := Parse("tcp=22,80,443,1000-2000,65535 udp=53")
	if err != nil {
		t.Fatal(err)
	}
	for port, want := range map[uint16]bool{
		0: false, 21: false, 22: true, 23: false, 80: true, 443: true, 999: false,
		1000: true, 1500: true, 2000: true, 2001: false, 65534: false, 65535: true,
	} {
		if got := s.AllowsTCP(port); got != want {
			t.Errorf("AllowsTCP(%d) = %v, want %v", port, got, want)
		}
		if got := s.AllowsUDP(port); got != (port == 53) && port != 53 {
			t.Errorf("AllowsUDP(%d) = %v", port, got)
		}
	}
	if !s.AllowsUDP(53) {
		t.Error("AllowsUDP(53) = false")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp=1-65535 udp=1-65535",
		"tcp=none udp=none",
		"tcp=22,80,443,1000-2000 udp=53",
		"tcp=80,81 udp=none",
		"tcp=080 udp=none",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sum, err := Parse(s)
		if err != nil {
			return
		}
		if got := sum.String(); got != s {
			t.Fatalf("Parse(%q) prints as %q: two spellings of one summary", s, got)
		}
		for _, rs := range [][]Range{sum.TCP, sum.UDP} {
			for i, r := range rs {
				if r.Lo == 0 || r.Lo > r.Hi || i > 0 && int(r.Lo) <= int(rs[i-1].Hi)+1 {
					t.Fatalf("%q: ranges %v not sorted, disjoint and apart", s, rs)
				}
			}
		}
	})
}
