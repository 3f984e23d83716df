package nat

import "encoding/binary"

// The Internet checksum is the ones'-complement of the ones'-complement sum of 16-bit words. When a
// field changes, RFC 1624 equation 3 gives the new checksum from the old one and the field's old and
// new values: HC' = ~(~HC + ~m + m'). For any checksum that a full computation could have produced
// the result equals what a full computation over the new packet gives, bit for bit; a field holding
// 0xFFFF (ones'-complement -0, which a full computation never writes) comes out as 0x0000, the same
// value in the other spelling.

func be16(b []byte) uint16         { return binary.BigEndian.Uint16(b) }
func put16(b []byte, v uint16)     { binary.BigEndian.PutUint16(b, v) }
func word(b [4]byte, i int) uint32 { return uint32(b[i])<<8 | uint32(b[i+1]) }

// fold reduces a 32-bit sum of 16-bit words to 16 bits with end-around carry.
func fold(s uint32) uint16 {
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}

// adjust4 returns checksum hc updated for a 4-byte field, at an even offset, changing from old to new.
func adjust4(hc uint16, old, new [4]byte) uint16 {
	s := uint32(^hc) + (0xffff - word(old, 0)) + (0xffff - word(old, 2)) + word(new, 0) + word(new, 2)
	return ^fold(s)
}

// adjust2 returns checksum hc updated for a 2-byte field, at an even offset, changing from old to new.
func adjust2(hc, old, new uint16) uint16 {
	return ^fold(uint32(^hc) + uint32(^old) + uint32(new))
}

// checksum computes the Internet checksum of b from scratch, for headers this package builds.
func checksum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(be16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// adjust16 returns checksum hc updated for a 16-byte field (an IPv6 address in a pseudo-header)
// changing from old to new.
func adjust16(hc uint16, old, new *[16]byte) uint16 {
	s := uint32(^hc)
	for i := 0; i < 16; i += 2 {
		s += 0xffff - (uint32(old[i])<<8 | uint32(old[i+1]))
		s += uint32(new[i])<<8 | uint32(new[i+1])
	}
	return ^fold(s)
}
