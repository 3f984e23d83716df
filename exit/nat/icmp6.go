package nat

import (
	"net/netip"
	"slices"
)

// ICMPv6 destination-unreachable codes an exit sends (RFC 4443 3.1).
const (
	// Code6NoRoute: no route to the destination.
	Code6NoRoute = 0
	// Code6AdminProhibited: the exit's policy refuses the destination.
	Code6AdminProhibited = 1
	// Code6AddrUnreachable: the destination does not answer.
	Code6AddrUnreachable = 3
	// Code6PortUnreachable: nothing listens on the port.
	Code6PortUnreachable = 4
)

// maxICMPv6Error is the longest ICMPv6 error an exit sends: RFC 4443 2.4(c) quotes as much of the
// packet as fits the IPv6 minimum MTU.
const maxICMPv6Error = 1280

// ICMPv6Unreachable builds an ICMPv6 destination-unreachable message (type 1, the given code) from
// `from` to the sender of orig, quoting as much of orig as fits in 1280 bytes (RFC 4443), with its
// checksum set. It appends the packet to dst[:0] and returns it; dst may be orig's own buffer. As
// ICMPUnreachable, it refuses (ErrICMPSuppressed) to answer an ICMPv6 error, a fragment other than
// the first, a packet to a multicast address, or one from an address that is not one host's. Callers
// rate-limit what they send.
func ICMPv6Unreachable(dst []byte, orig []byte, from netip.Addr, code uint8) ([]byte, error) {
	if !from.Is6() || from.Is4In6() {
		return nil, ErrAddrNotIPv6
	}
	h, err := ParseIPv6(orig)
	if err != nil {
		return nil, err
	}
	if suppressed6(h) {
		return nil, ErrICMPSuppressed
	}
	quote := min(h.TotalLen, maxICMPv6Error-48)
	n := 48 + quote
	out := slices.Grow(dst[:0], n)[:n]
	// The quote first: when out shares orig's buffer, copy moves it before the headers overwrite it.
	copy(out[48:], orig[:quote])
	ip, icmp := out[:40], out[40:]
	clear(ip)
	ip[0] = 0x60
	put16(ip[4:], uint16(n-40))
	ip[6] = protoICMPv6
	ip[7] = 64 // hop limit
	f, s := from.As16(), h.Src.As16()
	copy(ip[8:24], f[:])
	copy(ip[24:40], s[:])
	clear(icmp[:8])
	icmp[0], icmp[1] = 1, code
	put16(icmp[2:], checksum6(&f, &s, protoICMPv6, icmp))
	return out, nil
}

// checksum6 computes a transport checksum from scratch over l4 (its checksum field zero) and the
// IPv6 pseudo-header (RFC 8200 8.1).
func checksum6(src, dst *[16]byte, proto uint8, l4 []byte) uint16 {
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(src[i])<<8 | uint32(src[i+1])
		s += uint32(dst[i])<<8 | uint32(dst[i+1])
	}
	s += uint32(len(l4)>>16) + uint32(len(l4)&0xffff) + uint32(proto)
	s = uint32(^checksum(l4)) + uint32(fold(s))
	return ^fold(s)
}

func suppressed6(h Header) bool {
	if h.FragOffset != 0 || h.Proto == protoICMPv6 && isICMPv6Error(h.ICMPType) {
		return true
	}
	// Multicast, unspecified, loopback and IPv4-mapped sources name no remote host; a packet to
	// multicast was never one host's to answer for.
	return h.Dst.IsMulticast() || h.Src.IsMulticast() || h.Src.IsUnspecified() || h.Src.IsLoopback() || h.Src.Is4In6()
}
