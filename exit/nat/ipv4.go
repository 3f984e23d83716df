package nat

import (
	"errors"
	"net/netip"
)

// IP protocol numbers this package looks inside.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

var (
	// ErrNotIPv4 is returned for a packet whose version field is not 4.
	ErrNotIPv4 = errors.New("nat: not an IPv4 packet")
	// ErrMalformed is returned for an IP packet whose lengths do not hold together, or whose
	// transport header is missing from the first fragment. Such packets are dropped, not forwarded.
	ErrMalformed = errors.New("nat: malformed IP packet")
	// ErrAddrNotIPv4 is returned when an address given to a rewrite is not a plain IPv4 address.
	ErrAddrNotIPv4 = errors.New("nat: address is not IPv4")
)

// Header is what the exit reads from an IPv4 packet to route, police and rewrite it.
type Header struct {
	// Src and Dst are the packet's addresses.
	Src, Dst netip.Addr
	// Proto is the IP protocol number.
	Proto uint8
	// HeaderLen is the IP header's length in bytes, options included; TotalLen is the packet's
	// length from its header. Bytes of the buffer past TotalLen are not part of the packet.
	HeaderLen, TotalLen int
	// SrcPort and DstPort are set for TCP and UDP in a packet that starts its datagram
	// (FragOffset 0); otherwise they are zero, since no port is in the packet.
	SrcPort, DstPort uint16
	// Fragment reports whether the packet is a fragment: more fragments follow, or it does not
	// start its datagram.
	Fragment bool
	// FragOffset is where the packet's payload sits in its datagram, in bytes.
	FragOffset int
	// ICMPType and ICMPCode are set for ICMP in a packet that starts its datagram.
	ICMPType, ICMPCode uint8
}

// ParseIPv4 reads and checks the header of an IPv4 packet. The header checksum is not verified,
// since the kernel checks it, but every length is: the version is 4, the header is at least 20
// bytes, the total length covers the header and fits in pkt, and a packet that starts its datagram
// holds its whole transport header (20 bytes for TCP, 8 for UDP and ICMP). A TCP fragment at offset
// 8 is refused too: like a first fragment too short for the TCP header, it only serves to rewrite
// TCP flags past a filter (RFC 1858).
func ParseIPv4(pkt []byte) (Header, error) {
	if len(pkt) == 0 || pkt[0]>>4 != 4 {
		return Header{}, ErrNotIPv4
	}
	if len(pkt) < 20 {
		return Header{}, ErrMalformed
	}
	h := Header{
		Src:        netip.AddrFrom4([4]byte(pkt[12:16])),
		Dst:        netip.AddrFrom4([4]byte(pkt[16:20])),
		Proto:      pkt[9],
		HeaderLen:  int(pkt[0]&0x0f) * 4,
		TotalLen:   int(be16(pkt[2:])),
		FragOffset: int(be16(pkt[6:])&0x1fff) * 8,
	}
	h.Fragment = h.FragOffset != 0 || pkt[6]&0x20 != 0
	if h.HeaderLen < 20 || h.TotalLen < h.HeaderLen || h.TotalLen > len(pkt) {
		return Header{}, ErrMalformed
	}
	if h.FragOffset != 0 {
		if h.Proto == protoTCP && h.FragOffset == 8 {
			return Header{}, ErrMalformed
		}
		return h, nil
	}
	l4 := pkt[h.HeaderLen:h.TotalLen]
	switch h.Proto {
	case protoTCP:
		if len(l4) < 20 {
			return Header{}, ErrMalformed
		}
		h.SrcPort, h.DstPort = be16(l4), be16(l4[2:])
	case protoUDP:
		if len(l4) < 8 {
			return Header{}, ErrMalformed
		}
		h.SrcPort, h.DstPort = be16(l4), be16(l4[2:])
	case protoICMP:
		if len(l4) < 8 {
			return Header{}, ErrMalformed
		}
		h.ICMPType, h.ICMPCode = l4[0], l4[1]
	}
	return h, nil
}

// isICMPError reports whether an ICMP type is an error message, which quotes the packet it is about.
func isICMPError(typ uint8) bool {
	switch typ {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}
