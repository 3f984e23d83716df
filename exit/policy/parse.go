package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SyntaxError describes one rule Parse could not read. Parse returns every SyntaxError of a text at
// once, joined with errors.Join, so an operator fixes a policy in one pass.
type SyntaxError struct {
	// Line is the 1-based line of the rule.
	Line int
	// Entry is the rule's text, without comment or surrounding space.
	Entry string
	// Err says what is wrong with it.
	Err error
}

// Error returns the line, the rule and the problem.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("policy: line %d: %q: %v", e.Line, e.Entry, e.Err)
}

// Unwrap returns the underlying problem.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Parse reads exit rules in the syntax described in the package documentation. Rules keep their
// order, since the first match wins. An empty text (or one of comments only) gives no rules, which
// rejects everything.
func Parse(text string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		for entry := range strings.SplitSeq(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			r, err := parseRule(entry)
			if err != nil {
				errs = append(errs, &SyntaxError{Line: i + 1, Entry: entry, Err: err})
				continue
			}
			rules = append(rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rules, nil
}

func parseRule(entry string) (Rule, error) {
	var r Rule
	fields := strings.Fields(entry)
	if len(fields) != 2 {
		return r, errors.New("want accept|reject ADDR:PORTS[/PROTO]")
	}
	switch {
	case strings.EqualFold(fields[0], "accept"):
		r.Accept = true
	case strings.EqualFold(fields[0], "reject"):
	default:
		return r, fmt.Errorf("unknown action %q (want accept or reject)", fields[0])
	}
	addr, rest, err := splitTarget(fields[1])
	if err != nil {
		return r, err
	}
	if err := parseAddrSpec(&r, addr); err != nil {
		return r, err
	}
	ports, proto, hasProto := strings.Cut(rest, "/")
	if r.PortLo, r.PortHi, err = parsePorts(ports); err != nil {
		return r, err
	}
	if hasProto {
		switch {
		case strings.EqualFold(proto, "tcp"):
			r.Proto = ProtoTCP
		case strings.EqualFold(proto, "udp"):
			r.Proto = ProtoUDP
		case strings.EqualFold(proto, "icmp"):
			r.Proto = ProtoICMP
			if !r.anyPort() {
				return r, errors.New("icmp has no ports: write *")
			}
		default:
			return r, fmt.Errorf("unknown protocol %q (want tcp, udp or icmp)", proto)
		}
	}
	return r, nil
}

// splitTarget splits ADDR:PORTS[/PROTO]; IPv6 addresses are bracketed because their colons would make
// the split ambiguous. The returned addr keeps its brackets so parseAddrSpec knows the family meant.
func splitTarget(t string) (addr, rest string, err error) {
	if strings.HasPrefix(t, "[") {
		end := strings.IndexByte(t, ']')
		if end < 0 {
			return "", "", errors.New("missing ] after IPv6 address")
		}
		addr, rest = t[:end+1], t[end+1:]
		var ok bool
		if rest, ok = strings.CutPrefix(rest, ":"); !ok {
			return "", "", errors.New("missing :PORTS after address")
		}
		return addr, rest, nil
	}
	if strings.Count(t, ":") > 1 {
		return "", "", errors.New("IPv6 addresses go in brackets, as in [2001:db8::1]:443")
	}
	addr, rest, ok := strings.Cut(t, ":")
	if !ok {
		return "", "", errors.New("missing :PORTS after address")
	}
	return addr, rest, nil
}

func parseAddrSpec(r *Rule, s string) error {
	switch s {
	case "*":
		r.Any4, r.Any6 = true, true
		return nil
	case "*4":
		r.Any4 = true
		return nil
	case "*6":
		r.Any6 = true
		return nil
	}
	inner, bracketed := strings.CutPrefix(s, "[")
	if bracketed {
		inner = strings.TrimSuffix(inner, "]")
	}
	p, err := parsePrefix(inner)
	if err != nil {
		return err
	}
	switch {
	case bracketed && !p.Addr().Is6():
		return fmt.Errorf("%s is not IPv6: only IPv6 goes in brackets", inner)
	case !bracketed && !p.Addr().Is4():
		return fmt.Errorf("%s is not IPv4 (IPv6 goes in brackets)", inner)
	case p.Bits() >= 96 && (mapped.Contains(p.Addr()) || nat64.Contains(p.Addr())):
		// Such destinations are judged as the IPv4 address they carry, so the rule could never match.
		return fmt.Errorf("%s is IPv4 in IPv6 clothing: write the rule for the IPv4 address", inner)
	}
	r.Prefix = p
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if m := p.Masked(); m != p {
			// Most likely a typo, and either reading of it may be wrong: ask.
			return p, fmt.Errorf("%s has host bits set: did you mean %s?", s, m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: zones have no meaning at an exit", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 0, 65535, nil
	}
	los, his, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(los); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parsePort(his); err != nil {
		return 0, 0, err
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("port range %d-%d is backwards", lo, hi)
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q (want *, a port 1-65535 or a range a-b)", s)
	}
	if n == 0 {
		// No flow goes to port 0; a rule naming it is a mistake, and `*` already covers it.
		return 0, errors.New("port 0 is not a destination port")
	}
	return uint16(n), nil
}
