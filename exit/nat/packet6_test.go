package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Test-side IPv6 packet building and checking, apart from the package's code as packet_test.go is:
// every checksum here is summed from scratch over the pseudo-header of RFC 8200 8.1.

// pseudo6 is the sum of an IPv6 pseudo-header.
func pseudo6(src, dst [16]byte, proto uint8, length int) uint32 {
	return sum16(uint32(proto)+uint32(length>>16)+uint32(length&0xffff), append(src[:], dst[:]...))
}

// ext6 is one extension header: its type (0, 43, 44, 60) and, for a fragment header, the offset
// and more-fragments flag; options headers get optLen bytes of padding options.
type ext6 struct {
	typ    uint8
	optLen int // hop-by-hop and destination options: extra 8-byte units
	offset int // fragment header: offset in bytes, a multiple of 8
	more   bool
}

type pkt6Spec struct {
	src, dst [16]byte
	proto    uint8
	exts     []ext6
	l4       []byte // transport header and payload, checksum field left for ipv6() to fill
	noUDPSum bool
	noSum    bool // leave every checksum as in l4 (fragments built by hand)
	pad      int  // bytes after the packet in the buffer
}

// ipv6 builds a packet from spec with every checksum correct.
func ipv6(s pkt6Spec) []byte {
	var hdrs []byte
	next := s.proto
	for i := len(s.exts) - 1; i >= 0; i-- {
		e := s.exts[i]
		var h []byte
		switch e.typ {
		case protoFragment:
			h = make([]byte, 8)
			v := uint16(e.offset)
			if e.more {
				v |= 1
			}
			binary.BigEndian.PutUint16(h[2:], v)
			binary.BigEndian.PutUint32(h[4:], 0xabcd)
		default:
			h = make([]byte, 8+8*e.optLen)
			h[1] = byte(e.optLen)
			h[2], h[3] = 1, byte(len(h)-4) // one PadN option filling the header
		}
		h[0] = next
		next = e.typ
		hdrs = append(h, hdrs...)
	}
	payload := len(hdrs) + len(s.l4)
	pkt := make([]byte, 40+payload+s.pad)
	pkt[0] = 0x60
	pkt[1] = 0x0a // some traffic class and flow label
	binary.BigEndian.PutUint16(pkt[4:], uint16(payload))
	pkt[6] = next
	pkt[7] = 64
	copy(pkt[8:], s.src[:])
	copy(pkt[24:], s.dst[:])
	copy(pkt[40:], hdrs)
	copy(pkt[40+len(hdrs):], s.l4)
	for i := 40 + payload; i < len(pkt); i++ {
		pkt[i] = 0xee
	}
	if s.noSum {
		return pkt
	}
	l4 := pkt[40+len(hdrs) : 40+payload]
	switch s.proto {
	case protoTCP:
		fillChecksum(l4, 16, pseudo6(s.src, s.dst, protoTCP, len(l4)))
	case protoUDP:
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		if s.noUDPSum {
			l4[6], l4[7] = 0, 0
		} else {
			fillChecksum(l4, 6, pseudo6(s.src, s.dst, protoUDP, len(l4)))
			if l4[6] == 0 && l4[7] == 0 {
				l4[6], l4[7] = 0xff, 0xff
			}
		}
	case protoICMPv6:
		fillChecksum(l4, 2, pseudo6(s.src, s.dst, protoICMPv6, len(l4)))
	}
	return pkt
}

func a6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

func icmp6Echo(id, seq uint16, payload []byte) []byte {
	b := icmpEcho(id, seq, payload)
	b[0] = 128
	return b
}

// transport6 walks pkt's extension headers (the test's own walk) to the transport header.
func transport6(pkt []byte) (proto uint8, l4 []byte, later bool) {
	end := 40 + int(binary.BigEndian.Uint16(pkt[4:]))
	if end > len(pkt) {
		end = len(pkt)
	}
	next, at := pkt[6], 40
	for at < end {
		switch next {
		case 0, 60:
			if at+2 > end {
				return next, nil, false
			}
			next, at = pkt[at], at+8*(int(pkt[at+1])+1)
		case 44:
			if at+8 > end {
				return next, nil, false
			}
			later = binary.BigEndian.Uint16(pkt[at+2:])&^7 != 0
			next, at = pkt[at], at+8
		default:
			return next, pkt[at:end], later
		}
	}
	return next, nil, later
}

// verify6 checks, from scratch, every checksum in pkt (and in the packet an ICMPv6 error quotes
// whole). A later fragment carries no checksum of its own.
func verify6(t *testing.T, pkt []byte) {
	t.Helper()
	verify6What(t, "", pkt)
}

func verify6What(t *testing.T, what string, pkt []byte) {
	t.Helper()
	proto, l4, later := transport6(pkt)
	if later || l4 == nil {
		return
	}
	if binary.BigEndian.Uint16(pkt[4:])+40 != uint16(len(pkt)) && what != "" {
		return // a cut quote: its checksum cannot be checked
	}
	src, dst := [16]byte(pkt[8:24]), [16]byte(pkt[24:40])
	switch proto {
	case protoTCP, protoICMPv6:
		if s := sum16(pseudo6(src, dst, proto, len(l4)), l4); s != 0xffff {
			t.Fatalf("%sprotocol %d checksum wrong (sum %#04x)", what, proto, s)
		}
	case protoUDP:
		if binary.BigEndian.Uint16(l4[6:]) == 0 {
			return
		}
		if s := sum16(pseudo6(src, dst, proto, len(l4)), l4); s != 0xffff {
			t.Fatalf("%sUDP checksum wrong (sum %#04x)", what, s)
		}
	}
	if proto == protoICMPv6 && l4[0] < 128 && len(l4) >= 48 {
		verify6What(t, what+"quoted ", l4[8:])
	}
}

// mirror6 swaps the source and destination of pkt and of the packet an ICMPv6 error quotes; as
// mirror, it leaves every checksum valid.
func mirror6(pkt []byte) {
	swap16(pkt[8:24], pkt[24:40])
	if in, ok := quotedPacket6(pkt); ok {
		swap16(in[8:24], in[24:40])
	}
}

func quotedPacket6(pkt []byte) ([]byte, bool) {
	proto, l4, later := transport6(pkt)
	if proto != protoICMPv6 || later || len(l4) < 48 || l4[0] >= 128 || l4[8]>>4 != 6 {
		return nil, false
	}
	return l4[8:], true
}

func swap16(a, b []byte) {
	var t [16]byte
	copy(t[:], a)
	copy(a, b)
	copy(b, t[:])
}

func randAddr6(rng *rand.Rand) [16]byte { return [16]byte(randBytes(rng, 16)) }
