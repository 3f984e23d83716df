package policy

import (
	"encoding/binary"
	"net/netip"
)

// Decide runs for every new flow at an exit, so its prefix tests are precompiled into masks over the
// 128-bit form of addresses (IPv4 in its mapped form): two ANDs and two compares each, where
// netip.Prefix.Contains spends most of its time on zone and family checks. The family is kept
// beside the mask because ::/0 would otherwise cover every IPv4 address in mapped form.

// addrBits is an address as its two 64-bit halves.
type addrBits struct{ hi, lo uint64 }

func bitsOf(a netip.Addr) addrBits {
	b := a.As16()
	return addrBits{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixBits is a prefix as a network and a mask over addrBits.
type prefixBits struct {
	net, mask addrBits
	is4       bool
}

func prefixBitsOf(p netip.Prefix) prefixBits {
	n := p.Bits()
	if p.Addr().Is4() {
		n += 96
	}
	var m addrBits
	switch {
	case n >= 64:
		m.hi = ^uint64(0)
		if n > 64 {
			m.lo = ^uint64(0) << (128 - n)
		}
	case n > 0:
		m.hi = ^uint64(0) << (64 - n)
	}
	a := bitsOf(p.Addr())
	return prefixBits{net: addrBits{a.hi & m.hi, a.lo & m.lo}, mask: m, is4: p.Addr().Is4()}
}

func (p *prefixBits) contains(a addrBits, is4 bool) bool {
	return is4 == p.is4 && a.hi&p.mask.hi == p.net.hi && a.lo&p.mask.lo == p.net.lo
}

// compiledRule is a Rule ready for Decide.
type compiledRule struct {
	prefix     prefixBits
	hasPrefix  bool
	any4, any6 bool
	accept     bool
	lo, hi     uint16
	proto      Proto
}

func compile(r *Rule) compiledRule {
	c := compiledRule{any4: r.Any4, any6: r.Any6, accept: r.Accept, lo: r.PortLo, hi: r.PortHi, proto: r.Proto}
	if r.Prefix.IsValid() {
		c.prefix, c.hasPrefix = prefixBitsOf(r.Prefix), true
	}
	return c
}

// matches is Rule.matches over the compiled form; dst is normalized.
func (r *compiledRule) matches(dst addrBits, is4 bool, proto Proto, port uint16) bool {
	if r.proto != 0 && r.proto != proto && !(r.proto == ProtoICMP && proto == ProtoICMPv6) {
		return false
	}
	if !(r.any4 && is4 || r.any6 && !is4 || r.hasPrefix && r.prefix.contains(dst, is4)) {
		return false
	}
	if proto.hasPorts() {
		return r.lo <= port && port <= r.hi
	}
	return r.lo == 0 && r.hi == 65535
}
