package wireaddr

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"198.51.100.7:7000", "[2001:db8::1]:1", "10.0.0.1:65535"} {
		a := netip.MustParseAddrPort(s)
		b := Append(nil, a)
		if len(b) != Len {
			t.Fatalf("%v: %d bytes", a, len(b))
		}
		got, err := Read(b)
		if err != nil || got != a {
			t.Fatalf("%v: read %v, %v", a, got, err)
		}
	}
	for name, a := range map[string]netip.AddrPort{
		"port 0":      netip.MustParseAddrPort("198.51.100.7:0"),
		"unspecified": netip.MustParseAddrPort("0.0.0.0:1"),
		"unspec v6":   netip.MustParseAddrPort("[::]:1"),
	} {
		if _, err := Read(Append(nil, a)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	b := Append(nil, netip.MustParseAddrPort("198.51.100.7:7000"))
	b[0] = 6
	if _, err := Read(b); err == nil {
		t.Error("IPv6 family over a mapped IPv4 address accepted")
	}
	b = Append(nil, netip.MustParseAddrPort("[2001:db8::1]:1"))
	b[0] = 4
	if _, err := Read(b); err == nil {
		t.Error("IPv4 family over an IPv6 address accepted")
	}
	b[0] = 5
	if _, err := Read(b); err == nil {
		t.Error("family 5 accepted")
	}
	if _, err := Read(b[:Len-1]); err == nil {
		t.Error("short address accepted")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(Append(nil, netip.MustParseAddrPort("198.51.100.7:7000")))
	f.Add(Append(nil, netip.MustParseAddrPort("[2001:db8::1]:1")))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Read(b)
		if err != nil {
			return
		}
		if again := Append(nil, a); !bytes.Equal(again, b[:Len]) {
			t.Fatalf("read % x as %v, which encodes as % x", b[:Len], a, again)
		}
	})
}
