package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// String returns "lo-hi", or "lo" for a single port.
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// PortSummary is what a relay descriptor says of an exit's policy, so that clients can pick an exit
// for a destination port without the full rules. Ranges are sorted, disjoint and never adjacent.
type PortSummary struct{ TCP, UDP []PortRange }

// Summary returns the TCP and UDP ports the policy accepts to the IPv4 internet at large.
//
// It is defined simply: only the rules that cover every IPv4 address (`*`, `*4`, 0.0.0.0/0) count, in
// order, first match per port, default reject. Rules about narrower prefixes are left out, so an exit
// that rejects port 25 only to some networks still advertises port 25; a client may then meet a
// refusal for those networks, which the exit reports (ICMP administratively prohibited). IPv6-only
// rules are left out because exits reach the internet over IPv4 for now.
func (p *Policy) Summary() PortSummary {
	return PortSummary{TCP: p.summarize(ProtoTCP), UDP: p.summarize(ProtoUDP)}
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

func (p *Policy) summarize(proto Proto) []PortRange {
	var decided, accepted, fresh portSet
	for i := range p.rules {
		r := &p.rules[i]
		if !r.coversAll4() || r.Proto != 0 && r.Proto != proto {
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
				out = append(out, PortRange{uint16(lo), uint16(w*64 + b - 1)})
				in = false
			}
		}
	}
	if in {
		out = append(out, PortRange{uint16(lo), 65535})
	}
	return out
}

// Allows reports whether the summary accepts the TCP or UDP port. Other protocols are not summarized,
// so for them it reports false.
func (s PortSummary) Allows(proto Proto, port uint16) bool {
	var rs []PortRange
	switch proto {
	case ProtoTCP:
		rs = s.TCP
	case ProtoUDP:
		rs = s.UDP
	default:
		return false
	}
	i, found := slices.BinarySearchFunc(rs, port, func(r PortRange, port uint16) int {
		return int(r.Lo) - int(port)
	})
	if found {
		return true
	}
	return i > 0 && port <= rs[i-1].Hi
}

// String returns the summary's one canonical text, as descriptors carry it: for example
// "tcp=80,443,6881-6889 udp=none".
func (s PortSummary) String() string {
	var b strings.Builder
	b.WriteString("tcp=")
	writeRanges(&b, s.TCP)
	b.WriteString(" udp=")
	writeRanges(&b, s.UDP)
	return b.String()
}

func writeRanges(b *strings.Builder, rs []PortRange) {
	if len(rs) == 0 {
		b.WriteString("none")
		return
	}
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.String())
	}
}

// ParsePortSummary reads what PortSummary.String writes, and only that: descriptors are signed, and
// one spelling per summary keeps a signature from covering two readings.
func ParsePortSummary(s string) (PortSummary, error) {
	tcp, udp, ok := strings.Cut(s, " ")
	if !ok {
		return PortSummary{}, fmt.Errorf("policy: port summary %q: want \"tcp=... udp=...\"", s)
	}
	var sum PortSummary
	var errs []error
	var err error
	if sum.TCP, err = parseRanges(tcp, "tcp="); err != nil {
		errs = append(errs, err)
	}
	if sum.UDP, err = parseRanges(udp, "udp="); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return PortSummary{}, fmt.Errorf("policy: port summary %q: %w", s, errors.Join(errs...))
	}
	return sum, nil
}

func parseRanges(s, key string) ([]PortRange, error) {
	list, ok := strings.CutPrefix(s, key)
	if !ok {
		return nil, fmt.Errorf("want %s...", key)
	}
	if list == "none" {
		return nil, nil
	}
	var out []PortRange
	for item := range strings.SplitSeq(list, ",") {
		los, his, isRange := strings.Cut(item, "-")
		lo, err := parseCanonicalPort(los)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", key, item, err)
		}
		hi := lo
		if isRange {
			if hi, err = parseCanonicalPort(his); err != nil {
				return nil, fmt.Errorf("%s%s: %w", key, item, err)
			}
			if hi <= lo {
				return nil, fmt.Errorf("%s%s: range is not increasing", key, item)
			}
		}
		if n := len(out); n > 0 && int(lo) <= int(out[n-1].Hi)+1 {
			return nil, fmt.Errorf("%s%s: ranges must be sorted, disjoint and not adjacent", key, item)
		}
		out = append(out, PortRange{lo, hi})
	}
	return out, nil
}

func parseCanonicalPort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}
