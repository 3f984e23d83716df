package policy

import "github.com/meshvpn/meshvpn/core/exitports"

// PortRange and PortSummary are the exit port summary's types (core/exitports), named here too since
// a policy is where summaries come from.
type (
	PortRange   = exitports.Range
	PortSummary = exitports.Summary
)

// ParsePortSummary reads a summary's canonical text (exitports.Parse).
func ParsePortSummary(s string) (PortSummary, error) { return exitports.Parse(s) }

// Summary returns the TCP and UDP ports the policy accepts to the IPv4 internet at large.
//
// It is defined simply: only the rules that cover every IPv4 address (`*`, `*4`, 0.0.0.0/0) count, in
// order, first match per port, default reject. Rules about narrower prefixes are left out, so an exit
// that rejects port 25 only to some networks still advertises port 25; a client may then meet a
// refusal for those networks, which the exit reports (ICMP administratively prohibited). IPv6-only
// rules are left out: Summary6 is the IPv6 one.
func (p *Policy) Summary() PortSummary {
	return PortSummary{TCP: p.summarize(ProtoTCP, (*Rule).coversAll4), UDP: p.summarize(ProtoUDP, (*Rule).coversAll4)}
}

// Summary6 is Summary for the IPv6 internet: the rules that cover every IPv6 address (`*`, `*6`,
// [::/0]) count. An exit that carries IPv6 says so in its descriptor only when this accepts some
// port; descriptors carry one port summary, Summary's, so a client may meet a refusal (ICMPv6
// administratively prohibited) for an IPv6 port that only IPv4 rules accept.
func (p *Policy) Summary6() PortSummary {
	return PortSummary{TCP: p.summarize(ProtoTCP, (*Rule).coversAll6), UDP: p.summarize(ProtoUDP, (*Rule).coversAll6)}
}

// portSet is a set of the 65536 ports, one bit each.
type portSet [65536 / 64]uint64

// add adds the ports lo to hi to s, and to fresh those of them s did not hold yet.
func (s *portSet) add(lo, hi uint16, fresh *portSet) {
	for w := int(lo) / 64; w <= int(hi)/64; w++ {
		mask := ^uint64(0)
		if w == int(lo)/64 {
			mask &= ^uint64(0) << (lo % 64)
		}
		if w == int(hi)/64 {
			mask &= ^uint64(0) >> (63 - hi%64)
		}
		fresh[w] |= mask &^ s[w]
		s[w] |= mask
	}
}

func (p *Policy) summarize(proto Proto, covers func(*Rule) bool) []PortRange {
	var decided, accepted, fresh portSet
	for i := range p.rules {
		r := &p.rules[i]
		if !covers(r) || r.Proto != 0 && r.Proto != proto {
			continue
		}
		fresh = portSet{}
		decided.add(r.PortLo, r.PortHi, &fresh)
		if r.Accept {
			for w := range accepted {
				accepted[w] |= fresh[w]
			}
		}
	}
	accepted[0] &^= 1 // port 0 is not a destination: keep it out of the summary
	return accepted.ranges()
}

func (s *portSet) ranges() []PortRange {
	var out []PortRange
	in := false
	var lo int
	for w, word := range s {
		if word == 0 && !in || word == ^uint64(0) && in {
			continue
		}
		for b := range 64 {
			set := word&(1<<b) != 0
			switch {
			case set && !in:
				lo, in = w*64+b, true
			case !set && in:
				out = append(out, PortRange{Lo: uint16(lo), Hi: uint16(w*64 + b - 1)})
				in = false
			}
		}
	}
	if in {
		out = append(out, PortRange{Lo: uint16(lo), Hi: 65535})
	}
	return out
}

// SummaryAllows reports whether the summary accepts the port for a protocol with ports; other
// protocols are not summarized, so for them it reports false.
func SummaryAllows(s PortSummary, proto Proto, port uint16) bool {
	switch proto {
	case ProtoTCP:
		return s.AllowsTCP(port)
	case ProtoUDP:
		return s.AllowsUDP(port)
	}
	return false
}
