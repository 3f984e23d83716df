package nat

import "net/netip"

// Offsets of the addresses in an IPv6 header.
const (
	src6Off = 8
	dst6Off = 24
)

// RewriteSource6 is RewriteSource for IPv6: it replaces the source address of the IPv6 packet in pkt
// with newSrc, in place, and returns the address it replaced.
//
// IPv6 has no header checksum; the TCP, UDP and ICMPv6 checksums all cover a pseudo-header with the
// addresses and are patched (a UDP checksum of 0, which IPv6 does not allow and the receiver drops,
// stays 0). A fragment that does not start its datagram carries no transport header and only its
// address changes. In an ICMPv6 error the quoted packet's destination, which names the same host, is
// rewritten as well when it equals the old source, with the quoted transport checksum. A packet of
// another protocol only has its address changed: callers forward TCP, UDP and ICMPv6 only.
//
// On error pkt is left as it was.
func RewriteSource6(pkt []byte, newSrc netip.Addr) (oldSrc netip.Addr, err error) {
	return rewrite6(pkt, newSrc, src6Off)
}

// RewriteDest6 is RewriteDest for IPv6: it replaces the destination address, in place, patches the
// same checksums as RewriteSource6, and in an ICMPv6 error rewrites the quoted packet's source (the
// client's own packet the error is about). On error pkt is left as it was.
func RewriteDest6(pkt []byte, newDst netip.Addr) (oldDst netip.Addr, err error) {
	return rewrite6(pkt, newDst, dst6Off)
}

func rewrite6(pkt []byte, addr netip.Addr, off int) (netip.Addr, error) {
	if !addr.Is6() || addr.Is4In6() || addr.Zone() != "" {
		return netip.Addr{}, ErrAddrNotIPv6
	}
	h, err := ParseIPv6(pkt)
	if err != nil {
		return netip.Addr{}, err
	}
	old, nw := [16]byte(pkt[off:off+16]), addr.As16()
	if old == nw {
		return addr, nil
	}
	copy(pkt[off:off+16], nw[:])
	if h.FragOffset != 0 {
		return netip.AddrFrom16(old), nil
	}
	l4 := pkt[h.HeaderLen:h.TotalLen]
	switch h.Proto {
	case protoTCP:
		put16(l4[16:], adjust16(be16(l4[16:]), &old, &nw))
	case protoUDP:
		if c := be16(l4[6:]); c != 0 {
			put16(l4[6:], udpChecksum(adjust16(c, &old, &nw)))
		}
	case protoICMPv6:
		put16(l4[2:], adjust16(be16(l4[2:]), &old, &nw))
		rewriteQuoted6(l4, &old, &nw, src6Off+dst6Off-off)
	}
	return netip.AddrFrom16(old), nil
}

// rewriteQuoted6 rewrites the address at off in the packet an ICMPv6 error quotes, when it equals
// old, with the quoted transport checksum; the ICMPv6 checksum covers both. The quote may be cut
// anywhere, so each field is patched only if it was quoted.
func rewriteQuoted6(icmp []byte, old, nw *[16]byte, off int) {
	if !isICMPv6Error(icmp[0]) {
		return
	}
	in := icmp[8:]
	if len(in) < 40 || in[0]>>4 != 6 || [16]byte(in[off:off+16]) != *old {
		return
	}
	sum := adjust16(be16(icmp[2:]), old, nw)
	copy(in[off:off+16], nw[:])
	if proto, l4, ok := quotedTransport6(in); ok {
		switch {
		case proto == protoTCP && len(l4) >= 18:
			sum = set16(l4[16:], adjust16(be16(l4[16:]), old, nw), sum)
		case proto == protoUDP && len(l4) >= 8:
			if c := be16(l4[6:]); c != 0 {
				sum = set16(l4[6:], udpChecksum(adjust16(c, old, nw)), sum)
			}
		case proto == protoICMPv6 && len(l4) >= 4:
			sum = set16(l4[2:], adjust16(be16(l4[2:]), old, nw), sum)
		}
	}
	put16(icmp[2:], sum)
}

// quotedTransport6 walks the extension headers of a quoted IPv6 packet (which may be cut short) to
// its transport header: the protocol and the quoted bytes of it from its start. ok is false for a
// quote whose chain leaves the quote, or that is a later fragment.
func quotedTransport6(in []byte) (proto uint8, l4 []byte, ok bool) {
	next, at := in[6], 40
	if t := 40 + int(be16(in[4:])); t >= at && t < len(in) {
		in = in[:t] // bytes past the quoted packet's own length are not part of it
	}
	for n := 0; n <= maxExtHeaders; n++ {
		rest := in[at:]
		switch next {
		case protoHopByHop, protoDestOpts:
			if len(rest) < 2 || len(rest) < (int(rest[1])+1)*8 {
				return 0, nil, false
			}
			next, at = rest[0], at+(int(rest[1])+1)*8
		case protoFragment:
			if len(rest) < 8 || be16(rest[2:])&^7 != 0 {
				return 0, nil, false
			}
			next, at = rest[0], at+8
		default:
			return next, rest, true
		}
	}
	return 0, nil, false
}
