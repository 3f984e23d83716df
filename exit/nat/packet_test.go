package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Test-side packet building and checking, written apart from the package's own code so that the
// tests do not share its mistakes: every checksum here is summed from scratch.

// sum16 is the ones'-complement sum of b's 16-bit words, folded.
func sum16(init uint32, b []byte) uint32 {
	s := init
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return s
}

// pseudo is the sum of an IPv4 pseudo-header.
func pseudo(src, dst [4]byte, proto uint8, length int) uint32 {
	return sum16(uint32(proto)+uint32(length), append(src[:], dst[:]...))
}

// fillChecksum computes a checksum from scratch into b[at:at+2] over b plus init.
func fillChecksum(b []byte, at int, init uint32) {
	b[at], b[at+1] = 0, 0
	binary.BigEndian.PutUint16(b[at:], ^uint16(sum16(init, b)))
}

type pktSpec struct {
	src, dst [4]byte
	proto    uint8
	options  int    // IP option bytes, a multiple of 4
	l4       []byte // transport header and payload, checksum field left for ipv4() to fill
	noUDPSum bool
	pad      int // bytes after the packet in the buffer
}

// ipv4 builds a packet from spec with every checksum correct.
func ipv4(s pktSpec) []byte {
	ihl := 20 + s.options
	total := ihl + len(s.l4)
	pkt := make([]byte, total+s.pad)
	pkt[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(pkt[2:], uint16(total))
	binary.BigEndian.PutUint16(pkt[4:], 0x1234)
	pkt[8] = 64
	pkt[9] = s.proto
	copy(pkt[12:], s.src[:])
	copy(pkt[16:], s.dst[:])
	for i := 20; i < ihl; i++ {
		pkt[i] = 1 // NOP options
	}
	copy(pkt[ihl:], s.l4)
	for i := total; i < len(pkt); i++ {
		pkt[i] = 0xee
	}
	l4 := pkt[ihl:total]
	switch s.proto {
	case protoTCP:
		fillChecksum(l4, 16, pseudo(s.src, s.dst, protoTCP, len(l4)))
	case protoUDP:
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		if s.noUDPSum {
			l4[6], l4[7] = 0, 0
		} else {
			fillChecksum(l4, 6, pseudo(s.src, s.dst, protoUDP, len(l4)))
			if l4[6] == 0 && l4[7] == 0 {
				l4[6], l4[7] = 0xff, 0xff
			}
		}
	case protoICMP:
		fillChecksum(l4, 2, 0)
	}
	fillChecksum(pkt[:ihl], 10, 0)
	return pkt
}

func a4(s string) [4]byte { return netip.MustParseAddr(s).As4() }

func tcpSeg(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = 0x18
	copy(b[20:], payload)
	return b
}

func udpDgram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	copy(b[8:], payload)
	return b
}

func icmpEcho(id, seq uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = 8
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], payload)
	return b
}

// icmpError wraps a quoted packet in an ICMP error of the given type and code.
func icmpError(typ, code uint8, quoted []byte) []byte {
	b := make([]byte, 8+len(quoted))
	b[0], b[1] = typ, code
	copy(b[8:], quoted)
	return b
}

// verify checks, from scratch, every checksum in pkt that covers its addresses. A fragment's
// transport checksum cannot be checked alone; see reassemble.
func verify(t *testing.T, pkt []byte) {
	t.Helper()
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if s := sum16(0, pkt[:ihl]); s != 0xffff {
		t.Fatalf("IP header checksum wrong (sum %#04x)", s)
	}
	if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
		return
	}
	src, dst := [4]byte(pkt[12:16]), [4]byte(pkt[16:20])
	verifyL4(t, "", pkt[9], src, dst, pkt[ihl:total])
}

func verifyL4(t *testing.T, what string, proto uint8, src, dst [4]byte, l4 []byte) {
	t.Helper()
	switch proto {
	case protoTCP:
		if s := sum16(pseudo(src, dst, protoTCP, len(l4)), l4); s != 0xffff {
			t.Fatalf("%sTCP checksum wrong (sum %#04x)", what, s)
		}
	case protoUDP:
		c := binary.BigEndian.Uint16(l4[6:])
		if c == 0 {
			return
		}
		if s := sum16(pseudo(src, dst, protoUDP, len(l4)), l4); s != 0xffff {
			t.Fatalf("%sUDP checksum wrong (sum %#04x)", what, s)
		}
	case protoICMP:
		if s := sum16(0, l4); s != 0xffff {
			t.Fatalf("%sICMP checksum wrong (sum %#04x)", what, s)
		}
		if isICMPError(l4[0]) && len(l4) >= 28 {
			in := l4[8:]
			ihl := int(in[0]&0x0f) * 4
			if ihl > len(in) {
				return
			}
			if s := sum16(0, in[:ihl]); s != 0xffff {
				t.Fatalf("%squoted IP header checksum wrong (sum %#04x)", what, s)
			}
			total := int(binary.BigEndian.Uint16(in[2:]))
			if total == len(in) { // the whole packet is quoted: its transport checksum can be checked
				verifyL4(t, what+"quoted ", in[9], [4]byte(in[12:16]), [4]byte(in[16:20]), in[ihl:])
			}
		}
	}
}

// mirror turns a packet into the shape of its reply without touching a checksum: it swaps the
// source and destination addresses, and those of the packet an ICMP error quotes. A ones'-complement
// sum does not depend on the order of its words, so every checksum stays valid.
func mirror(pkt []byte) {
	swap4(pkt[12:16], pkt[16:20])
	if in, ok := quotedPacket(pkt); ok {
		swap4(in[12:16], in[16:20])
	}
}

// quotedPacket returns the packet an ICMP error quotes, when its IP header is quoted whole.
func quotedPacket(pkt []byte) ([]byte, bool) {
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if pkt[9] != protoICMP || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
		return nil, false
	}
	icmp := pkt[ihl:total]
	if !isICMPError(icmp[0]) || len(icmp) < 28 || icmp[8]>>4 != 4 {
		return nil, false
	}
	in := icmp[8:]
	if n := int(in[0]&0x0f) * 4; n < 20 || n > len(in) {
		return nil, false
	}
	return in, true
}

func swap4(a, b []byte) {
	var t [4]byte
	copy(t[:], a)
	copy(a, b)
	copy(b, t[:])
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randAddr(rng *rand.Rand) [4]byte { return [4]byte(randBytes(rng, 4)) }
