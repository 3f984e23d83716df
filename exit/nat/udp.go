package nat

import (
	"errors"
	"net/netip"
	"slices"
)

// ErrTooLarge is returned by UDPv4 for a payload that does not fit one IPv4 packet.
var ErrTooLarge = errors.New("nat: payload too large for one IPv4 packet")

// UDPv4 builds an IPv4/UDP packet from src to dst carrying payload, with both checksums set, for a
// service the exit answers itself (the tunnel resolver). It appends the packet to buf[:0] and returns
// it.
func UDPv4(buf []byte, src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return nil, ErrAddrNotIPv4
	}
	n := 20 + 8 + len(payload)
	if n > 0xffff {
		return nil, ErrTooLarge
	}
	out := slices.Grow(buf[:0], n)[:n]
	ip, udp := out[:20], out[20:]
	copy(udp[8:], payload)
	clear(ip)
	ip[0] = 0x45
	put16(ip[2:], uint16(n))
	ip[6] = 0x40 // don't fragment: it fits the tunnel's MTU, or it is not sent
	ip[8] = 64   // TTL
	ip[9] = protoUDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	put16(ip[10:], checksum(ip))
	put16(udp[0:], src.Port())
	put16(udp[2:], dst.Port())
	put16(udp[4:], uint16(8+len(payload)))
	put16(udp[6:], 0)
	// The checksum covers a pseudo-header of the addresses, protocol and UDP length, then the datagram.
	var pseudo uint32
	pseudo += word(s, 0) + word(s, 2) + word(d, 0) + word(d, 2) + protoUDP + uint32(8+len(payload))
	sum := ^checksum(udp) // the datagram's sum, uncomplemented
	put16(udp[6:], udpChecksum(^fold(pseudo+uint32(sum))))
	return out, nil
}
