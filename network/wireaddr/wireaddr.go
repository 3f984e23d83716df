// Package wireaddr is the one fixed-length encoding of an IP address and port that MeshVPN's messages
// carry (EXTEND cells, link control messages, whois answers): a family byte (4 or 6), 16 bytes of IP
// (an IPv4 address mapped into IPv6) and the port, big-endian — Len bytes in all.
package wireaddr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Len is the length of an encoded address.
const Len = 1 + 16 + 2

// Put writes a into b[:Len].
func Put(b []byte, a netip.AddrPort) {
	_ = b[Len-1]
	b[0] = 6
	if a.Addr().Is4() {
		b[0] = 4
	}
	ip := a.Addr().As16()
	copy(b[1:17], ip[:])
	binary.BigEndian.PutUint16(b[17:19], a.Port())
}

// Append appends a's encoding to dst.
func Append(dst []byte, a netip.AddrPort) []byte {
	var b [Len]byte
	Put(b[:], a)
	return append(dst, b[:]...)
}

// Read reads what Put writes from b[:Len], refusing a family that does not match the address, and
// what nobody can be reached at (port 0, the unspecified address).
func Read(b []byte) (netip.AddrPort, error) {
	if len(b) < Len {
		return netip.AddrPort{}, fmt.Errorf("address of %d bytes, want %d", len(b), Len)
	}
	var ip [16]byte
	copy(ip[:], b[1:17])
	a := netip.AddrFrom16(ip)
	switch b[0] {
	case 4:
		if !a.Is4In6() {
			return netip.AddrPort{}, errors.New("IPv4 family with an IPv6 address")
		}
		a = a.Unmap()
	case 6:
		if a.Is4In6() {
			return netip.AddrPort{}, errors.New("IPv6 family with a mapped IPv4 address")
		}
	default:
		return netip.AddrPort{}, fmt.Errorf("address family %d", b[0])
	}
	port := binary.BigEndian.Uint16(b[17:19])
	if port == 0 || a.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("address %v port %d", a, port)
	}
	return netip.AddrPortFrom(a, port), nil
}
