package nat

import (
	"errors"
	"net/netip"
	"slices"
)

// ICMP destination-unreachable codes an exit sends (RFC 792, RFC 1812).
const (
	// CodeNetUnreachable: no route to the destination's network.
	CodeNetUnreachable = 0
	// CodeHostUnreachable: the destination host does not answer.
	CodeHostUnreachable = 1
	// CodeProtoUnreachable: the protocol is not carried.
	CodeProtoUnreachable = 2
	// CodePortUnreachable: nothing listens on the port.
	CodePortUnreachable = 3
	// CodeAdminProhibited: the exit's policy refuses the destination.
	CodeAdminProhibited = 13
)

// ErrICMPSuppressed is returned by ICMPUnreachable for a packet no ICMP error may be sent about
// (RFC 1122 3.2.2, RFC 1812 4.3.2.7): an ICMP error, a fragment other than the first, a packet to a
// multicast or broadcast address, or one whose source is not a single host. Answering those would
// feed error storms and let a spoofed source turn the exit into an amplifier.
var ErrICMPSuppressed = errors.New("nat: no ICMP error may be sent about this packet")

// ICMPUnreachable builds an ICMP destination-unreachable message (type 3, the given code) from
// `from` to the sender of orig, quoting orig's IP header and the first 8 bytes of its payload as
// RFC 792 says, with both checksums set. It appends the packet to dst[:0] and returns it; dst may be
// orig's own buffer. Callers rate-limit what they send.
func ICMPUnreachable(dst []byte, orig []byte, from netip.Addr, code uint8) ([]byte, error) {
	if !from.Is4() {
		return nil, ErrAddrNotIPv4
	}
	h, err := ParseIPv4(orig)
	if err != nil {
		return nil, err
	}
	if suppressed(h) {
		return nil, ErrICMPSuppressed
	}
	quote := h.HeaderLen + min(8, h.TotalLen-h.HeaderLen)
	n := 20 + 8 + quote
	out := slices.Grow(dst[:0], n)[:n]
	// The quote first: when out shares orig's buffer, copy moves it before the headers overwrite it.
	copy(out[28:], orig[:quote])
	ip, icmp := out[:20], out[20:]
	clear(ip)
	ip[0] = 0x45
	put16(ip[2:], uint16(n))
	ip[8] = 64 // TTL
	ip[9] = protoICMP
	f, s := from.As4(), h.Src.As4()
	copy(ip[12:16], f[:])
	copy(ip[16:20], s[:])
	put16(ip[10:], checksum(ip))
	clear(icmp[:8])
	icmp[0], icmp[1] = 3, code
	put16(icmp[2:], checksum(icmp))
	return out, nil
}

func suppressed(h Header) bool {
	if h.FragOffset != 0 || h.Proto == protoICMP && isICMPError(h.ICMPType) {
		return true
	}
	src, dst := h.Src.As4(), h.Dst.As4()
	// 224.0.0.0 and up is multicast, reserved and broadcast alike; 0/8 and 127/8 name no remote host.
	return dst[0] >= 224 || src[0] >= 224 || src[0] == 0 || src[0] == 127
}
