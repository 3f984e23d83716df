package policy

import (
	"net/netip"
	"strconv"
	"strings"
)

// Proto is an IP protocol number as IANA assigns them, so the number read from a packet's header is
// the value Decide takes.
type Proto uint8

// The protocols exit rules can name. ICMPv6 has its own number; a rule for ProtoICMP matches both.
const (
	ProtoICMP   Proto = 1
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoICMPv6 Proto = 58
)

// String returns the protocol's name as the rule syntax writes it, or its number.
func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMPv6:
		return "icmp6"
	}
	return strconv.Itoa(int(p))
}

// hasPorts reports whether flows of the protocol have destination ports that rules can match.
func (p Proto) hasPorts() bool { return p == ProtoTCP || p == ProtoUDP }

// Rule is one operator rule of an exit policy. It matches a flow when the destination address, the
// protocol and, for TCP and UDP, the destination port all match.
type Rule struct {
	// Accept is true for accept rules and false for reject rules.
	Accept bool
	// Prefix is the destination network; a single address is a full-length prefix. It is the zero
	// Prefix when Any4 or Any6 is set.
	Prefix netip.Prefix
	// Any4 and Any6 match every IPv4 or every IPv6 destination; `*` sets both.
	Any4, Any6 bool
	// PortLo and PortHi bound the destination ports, inclusive. 0-65535 is the wildcard `*`, the
	// only port spec that matches protocols without ports.
	PortLo, PortHi uint16
	// Proto restricts the rule to one protocol; 0 means every protocol.
	Proto Proto
}

// anyPort reports whether the rule's port spec is the wildcard.
func (r *Rule) anyPort() bool { return r.PortLo == 0 && r.PortHi == 65535 }

// coversAll4 reports whether the rule applies to every IPv4 destination, which is what makes it count
// in a Summary.
func (r *Rule) coversAll4() bool {
	return r.Any4 || r.Prefix.IsValid() && r.Prefix.Addr().Is4() && r.Prefix.Bits() == 0
}

// coversAll6 reports whether the rule applies to every IPv6 destination, for Summary6.
func (r *Rule) coversAll6() bool {
	return r.Any6 || r.Prefix.IsValid() && r.Prefix.Addr().Is6() && r.Prefix.Bits() == 0
}

// String returns the rule in the canonical form of the rule syntax, which Parse reads back to the
// same Rule.
func (r Rule) String() string {
	var b strings.Builder
	r.appendTo(&b)
	return b.String()
}

func (r *Rule) appendTo(b *strings.Builder) {
	if r.Accept {
		b.WriteString("accept ")
	} else {
		b.WriteString("reject ")
	}
	switch {
	case r.Any4 && r.Any6:
		b.WriteString("*")
	case r.Any4:
		b.WriteString("*4")
	case r.Any6:
		b.WriteString("*6")
	case r.Prefix.Addr().Is6():
		b.WriteByte('[')
		writePrefix(b, r.Prefix)
		b.WriteByte(']')
	default:
		writePrefix(b, r.Prefix)
	}
	b.WriteByte(':')
	switch {
	case r.anyPort():
		b.WriteByte('*')
	case r.PortLo == r.PortHi:
		b.WriteString(strconv.Itoa(int(r.PortLo)))
	default:
		b.WriteString(strconv.Itoa(int(r.PortLo)))
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(int(r.PortHi)))
	}
	if r.Proto != 0 {
		b.WriteByte('/')
		b.WriteString(r.Proto.String())
	}
}

// writePrefix writes a single address without its length, as operators write it.
func writePrefix(b *strings.Builder, p netip.Prefix) {
	if p.IsSingleIP() {
		b.WriteString(p.Addr().String())
		return
	}
	b.WriteString(p.String())
}
