package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// checksum is the Internet checksum (RFC 1071) of b, continuing from the partial sum initial.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpPseudoSum is the partial sum of the IPv4 pseudo-header for a UDP datagram of length n.
func udpPseudoSum(src, dst netip.Addr, n int) uint32 {
	s, d := src.As4(), dst.As4()
	return uint32(binary.BigEndian.Uint16(s[:2])) + uint32(binary.BigEndian.Uint16(s[2:])) +
		uint32(binary.BigEndian.Uint16(d[:2])) + uint32(binary.BigEndian.Uint16(d[2:])) +
		17 + uint32(n)
}

// ipv4UDP builds an IPv4 UDP packet with correct checksums, as the kernel will check both.
func ipv4UDP(src, dst netip.AddrPort, payload []byte) []byte {
	const ihl, udpLen = 20, 8
	pkt := make([]byte, ihl+udpLen+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(pkt[4:], 0x4d56) // identification
	binary.BigEndian.PutUint16(pkt[6:], 0x4000) // don't fragment
	pkt[8], pkt[9] = 64, 17                     // TTL, UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:ihl], 0))

	udp := pkt[ihl:]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[udpLen:], payload)
	c := checksum(udp, udpPseudoSum(src.Addr(), dst.Addr(), len(udp)))
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return pkt
}

// errNotUDP4 marks packets that are not IPv4 UDP (the kernel's own IPv6 chatter, say), which a
// reader looking for one datagram skips.
var errNotUDP4 = errors.New("not IPv4 UDP")

// parseIPv4UDP checks an IPv4 UDP packet's lengths and both checksums and returns its parts.
func parseIPv4UDP(pkt []byte) (src, dst netip.AddrPort, payload []byte, err error) {
	if len(pkt) < 28 || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return src, dst, nil, errNotUDP4
	}
	ihl := int(pkt[0]&0xf) * 4
	if ihl < 20 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) || len(pkt) < ihl+8 {
		return src, dst, nil, fmt.Errorf("bad IPv4 lengths: ihl %d total %d, have %d", ihl, binary.BigEndian.Uint16(pkt[2:]), len(pkt))
	}
	if checksum(pkt[:ihl], 0) != 0 {
		return src, dst, nil, errors.New("bad IPv4 header checksum")
	}
	sa, da := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
	udp := pkt[ihl:]
	if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		return src, dst, nil, fmt.Errorf("UDP length %d, have %d", binary.BigEndian.Uint16(udp[4:]), len(udp))
	}
	if binary.BigEndian.Uint16(udp[6:]) != 0 && checksum(udp, udpPseudoSum(sa, da, len(udp))) != 0 {
		return src, dst, nil, errors.New("bad UDP checksum")
	}
	src = netip.AddrPortFrom(sa, binary.BigEndian.Uint16(udp[0:]))
	dst = netip.AddrPortFrom(da, binary.BigEndian.Uint16(udp[2:]))
	return src, dst, udp[8:], nil
}

func TestIPv4UDPRoundTrip(t *testing.T) {
	src := netip.MustParseAddrPort("10.77.0.2:9")
	dst := netip.MustParseAddrPort("10.77.0.1:40000")
	for _, payload := range [][]byte{nil, []byte("x"), []byte("meshvpn")} {
		pkt := ipv4UDP(src, dst, payload)
		s, d, p, err := parseIPv4UDP(pkt)
		if err != nil || s != src || d != dst || string(p) != string(payload) {
			t.Fatalf("parse(build(%q)) = %v %v %q %v", payload, s, d, p, err)
		}
		pkt[len(pkt)-1] ^= 1
		if len(payload) > 0 {
			if _, _, _, err := parseIPv4UDP(pkt); err == nil {
				t.Fatalf("corrupted packet parsed")
			}
		}
	}
}
