//go:build linux

package udp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPutSockaddrRoundTrip(t *testing.T) {
	for _, c := range []struct {
		ap    string
		inet6 bool
		want  string // "" for refused
	}{
		{"192.0.2.7:51820", false, "192.0.2.7:51820"},
		{"[::ffff:192.0.2.7]:9", false, "192.0.2.7:9"},
		{"192.0.2.7:9", true, "[::ffff:192.0.2.7]:9"},
		{"[2001:db8::1]:443", true, "[2001:db8::1]:443"},
		{"[fe80::1%1]:7", true, "[fe80::1%lo]:7"},
		{"[fe80::1%lo]:7", true, "[fe80::1%lo]:7"},
		{"[2001:db8::1]:443", false, ""},
		{"[fe80::1%nosuchinterface0]:7", true, ""},
	} {
		var b [unix.SizeofSockaddrInet6]byte
		n, ok := putSockaddr(&b, netip.MustParseAddrPort(c.ap), c.inet6)
		if c.want == "" {
			if ok {
				t.Errorf("%s (inet6 %v): encoded, want refused", c.ap, c.inet6)
			}
			continue
		}
		var z zoneName
		got, ok2 := parseSockaddr(b[:n], &z)
		if !ok || !ok2 || got.String() != c.want {
			t.Errorf("%s (inet6 %v): round trip gave %v (%v %v), want %s", c.ap, c.inet6, got, ok, ok2, c.want)
		}
	}
}

func TestParseSockaddr(t *testing.T) {
	in4 := func(addr [4]byte, port uint16) []byte {
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], port)
		copy(b[4:], addr[:])
		return b
	}
	in6 := func(addr netip.Addr, port uint16, scope uint32) []byte {
		b := make([]byte, unix.SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], port)
		a := addr.As16()
		copy(b[8:], a[:])
		binary.NativeEndian.PutUint32(b[24:], scope)
		return b
	}
	mapped := netip.MustParseAddr("::ffff:192.0.2.7")
	for _, c := range []struct {
		name string
		sa   []byte
		want string // "" for not ok
	}{
		{"ipv4", in4([4]byte{192, 0, 2, 7}, 51820), "192.0.2.7:51820"},
		{"ipv4 high port", in4([4]byte{10, 0, 0, 1}, 0xfe01), "10.0.0.1:65025"},
		{"ipv6", in6(netip.MustParseAddr("2001:db8::1"), 443, 0), "[2001:db8::1]:443"},
		{"ipv4-mapped", in6(mapped, 9, 0), "[::ffff:192.0.2.7]:9"},
		{"link-local, unknown scope", in6(netip.MustParseAddr("fe80::1"), 7, 1<<30), "[fe80::1%1073741824]:7"},
		{"ipv4 short", in4([4]byte{192, 0, 2, 7}, 1)[:6], ""},
		{"ipv6 short", in6(netip.MustParseAddr("2001:db8::1"), 1, 0)[:24], ""},
		{"empty", nil, ""},
		{"unix family", []byte{byte(unix.AF_UNIX), 0, 0, 0, 0, 0, 0, 0}, ""},
	} {
		var z zoneName
		got, ok := parseSockaddr(c.sa, &z)
		if c.want == "" {
			if ok {
				t.Errorf("%s: parsed as %v, want refused", c.name, got)
			}
			continue
		}
		if !ok || got.String() != c.want {
			t.Errorf("%s: got %v %v, want %s", c.name, got, ok, c.want)
		}
	}
	// Scope 1 is the loopback interface on Linux, named as the standard library names it.
	var z zoneName
	got, ok := parseSockaddr(in6(netip.MustParseAddr("fe80::1"), 7, 1), &z)
	if !ok || got.Addr().Zone() != "lo" {
		t.Errorf("scope 1: got %v %v, want zone lo", got, ok)
	}
}
