package nat

import (
	"errors"
	"net/netip"
)

// IPv6 next-header values this package walks or looks inside.
const (
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoICMPv6   = 58
	protoDestOpts = 60
)

// maxExtHeaders bounds the extension headers ParseIPv6 walks: a real packet has one or two, and a
// chain of hundreds only serves to make a filter work (or give up) past its budget.
const maxExtHeaders = 8

var (
	// ErrNotIPv6 is returned for a packet whose version field is not 6.
	ErrNotIPv6 = errors.New("nat: not an IPv6 packet")
	// ErrAddrNotIPv6 is returned when an address given to an IPv6 rewrite is not a plain IPv6 address
	// (an IPv4-mapped one is IPv4's).
	ErrAddrNotIPv6 = errors.New("nat: address is not IPv6")
)

// ParseIPv6 reads and checks the header of an IPv6 packet and walks its extension headers to the
// transport header. Every length is checked: the version is 6, the payload length (jumbograms are
// refused) fits in pkt, each extension header fits in the payload, and a packet that starts its
// datagram holds its whole header chain and transport header (20 bytes for TCP, 8 for UDP and
// ICMPv6), as RFC 7112 requires of a first fragment.
//
// Hop-by-hop and destination options and the fragment header are walked; any other next header ends
// the walk and is the packet's Proto, so a routing header (43), which would send the packet on to an
// address other than its destination, reads as protocol 43 and is never rewritten as TCP or UDP.
// HeaderLen is where Proto's header starts (40 plus the extension headers), TotalLen 40 plus the
// payload length.
func ParseIPv6(pkt []byte) (Header, error) {
	if len(pkt) == 0 || pkt[0]>>4 != 6 {
		return Header{}, ErrNotIPv6
	}
	if len(pkt) < 40 {
		return Header{}, ErrMalformed
	}
	h := Header{
		Src:       netip.AddrFrom16([16]byte(pkt[8:24])),
		Dst:       netip.AddrFrom16([16]byte(pkt[24:40])),
		HeaderLen: 40,
		TotalLen:  40 + int(be16(pkt[4:])),
	}
	if h.TotalLen == 40 && pkt[6] == protoHopByHop || h.TotalLen > len(pkt) {
		return Header{}, ErrMalformed // a jumbogram, or cut
	}
	next := pkt[6]
walk:
	for n := 0; ; n++ {
		if n > maxExtHeaders {
			return Header{}, ErrMalformed
		}
		rest := pkt[h.HeaderLen:h.TotalLen]
		switch next {
		case protoHopByHop, protoDestOpts:
			if next == protoHopByHop && n != 0 {
				return Header{}, ErrMalformed // only ever first (RFC 8200 4.3)
			}
			if len(rest) < 8 || len(rest) < (int(rest[1])+1)*8 {
				return Header{}, ErrMalformed
			}
			next = rest[0]
			h.HeaderLen += (int(rest[1]) + 1) * 8
			continue
		case protoFragment:
			if len(rest) < 8 || h.Fragment {
				return Header{}, ErrMalformed
			}
			next = rest[0]
			h.HeaderLen += 8
			h.FragOffset = int(be16(rest[2:]) &^ 7)
			h.Fragment = h.FragOffset != 0 || rest[3]&1 != 0
			if h.FragOffset != 0 {
				h.Proto = next
				return h, nil
			}
			continue
		}
		break walk
	}
	h.Proto = next
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
	case protoICMPv6:
		if len(l4) < 8 {
			return Header{}, ErrMalformed
		}
		h.ICMPType, h.ICMPCode = l4[0], l4[1]
	}
	return h, nil
}

// isICMPv6Error reports whether an ICMPv6 type is an error message, which quotes the packet it is
// about: types below 128 (RFC 4443 2.1).
func isICMPv6Error(typ uint8) bool { return typ < 128 }

// Parse reads the header of an IPv4 or IPv6 packet (ParseIPv4, ParseIPv6), by its version field.
func Parse(pkt []byte) (Header, error) {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return ParseIPv6(pkt)
	}
	return ParseIPv4(pkt)
}
