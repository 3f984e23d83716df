package nat

import "net/netip"

// Offsets of the addresses in an IPv4 header.
const (
	srcOff = 12
	dstOff = 16
)

// RewriteSource replaces the source address of the IPv4 packet in pkt with newSrc, in place, and
// returns the address it replaced. It is the client-to-internet half of the exit's NAT.
//
// The IP header checksum and the TCP or UDP checksum (whose pseudo-header holds the address) are
// patched; a UDP checksum of 0, meaning none, stays 0. A fragment that does not start its datagram
// has no transport header, so only its IP header changes; the first fragment's transport checksum
// is patched for the whole datagram. In an ICMP error the quoted packet's destination, which names
// the same host, is rewritten as well when it equals the old source. Other protocols have no
// checksum over the addresses and only the IP header changes.
//
// On error pkt is left as it was.
func RewriteSource(pkt []byte, newSrc netip.Addr) (oldSrc netip.Addr, err error) {
	return rewrite(pkt, newSrc, srcOff)
}

// RewriteDest replaces the destination address of the IPv4 packet in pkt with newDst, in place,
// and returns the address it replaced. It is the internet-to-client half of the exit's NAT, and
// patches the same checksums as RewriteSource; in an ICMP error it rewrites the quoted packet's
// source, the client's own packet that the error is about. On error pkt is left as it was.
func RewriteDest(pkt []byte, newDst netip.Addr) (oldDst netip.Addr, err error) {
	return rewrite(pkt, newDst, dstOff)
}

// rewrite replaces the address at off. An ICMP error sent by a host quotes a packet sent to it,
// and one sent to a host quotes a packet it sent, so the quoted field is the other one.
func rewrite(pkt []byte, addr netip.Addr, off int) (netip.Addr, error) {
	if !addr.Is4() {
		return netip.Addr{}, ErrAddrNotIPv4
	}
	h, err := ParseIPv4(pkt)
	if err != nil {
		return netip.Addr{}, err
	}
	old, nw := [4]byte(pkt[off:off+4]), addr.As4()
	if old == nw {
		return addr, nil
	}
	copy(pkt[off:off+4], nw[:])
	put16(pkt[10:], adjust4(be16(pkt[10:]), old, nw))
	if h.FragOffset != 0 {
		return netip.AddrFrom4(old), nil
	}
	l4 := pkt[h.HeaderLen:h.TotalLen]
	switch h.Proto {
	case protoTCP:
		put16(l4[16:], adjust4(be16(l4[16:]), old, nw))
	case protoUDP:
		if c := be16(l4[6:]); c != 0 {
			put16(l4[6:], udpChecksum(adjust4(c, old, nw)))
		}
	case protoICMP:
		rewriteQuoted(l4, old, nw, srcOff+dstOff-off)
	}
	return netip.AddrFrom4(old), nil
}

// udpChecksum spells a computed zero as 0xFFFF, since 0 in the field means "no checksum".
func udpChecksum(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// rewriteQuoted rewrites the address at off in the packet an ICMP error quotes, with the quoted
// packet's header and transport checksums, when it equals old; the ICMP checksum covers all of
// them. The quote may be cut short anywhere after the IP header, so each field is patched only if
// it was quoted.
func rewriteQuoted(icmp []byte, old, nw [4]byte, off int) {
	if !isICMPError(icmp[0]) {
		return
	}
	in := icmp[8:]
	if len(in) < 20 || in[0]>>4 != 4 {
		return
	}
	ihl := int(in[0]&0x0f) * 4
	if ihl < 20 || ihl > len(in) || [4]byte(in[off:off+4]) != old {
		return
	}
	sum := adjust4(be16(icmp[2:]), old, nw)
	copy(in[off:off+4], nw[:])
	sum = set16(in[10:], adjust4(be16(in[10:]), old, nw), sum)
	if be16(in[6:])&0x1fff == 0 {
		l4 := in[ihl:]
		if t := int(be16(in[2:])); t >= ihl && t-ihl < len(l4) {
			l4 = l4[:t-ihl]
		}
		switch in[9] {
		case protoTCP:
			if len(l4) >= 18 {
				sum = set16(l4[16:], adjust4(be16(l4[16:]), old, nw), sum)
			}
		case protoUDP:
			if len(l4) >= 8 {
				if c := be16(l4[6:]); c != 0 {
					sum = set16(l4[6:], udpChecksum(adjust4(c, old, nw)), sum)
				}
			}
		}
	}
	put16(icmp[2:], sum)
}

// set16 writes v into the 2-byte field b and returns the covering checksum sum patched for it.
func set16(b []byte, v, sum uint16) uint16 {
	sum = adjust2(sum, be16(b), v)
	put16(b, v)
	return sum
}
