// Package exitports is the exit port summary: the TCP and UDP ports an exit accepts to the internet
// at large, in the one canonical text that descriptors carry and sign ("tcp=80,443 udp=53"). Exits make
// it from their policy (exit/policy); clients read it to pick an exit for a destination port.
package exitports

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Range is an inclusive range of ports.
type Range struct{ Lo, Hi uint16 }

// String returns "lo-hi", or "lo" for a single port.
func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Summary is what a relay descriptor says of an exit's policy, so that clients can pick an exit
// for a destination port without the full rules. Ranges are sorted, disjoint and never adjacent.
type Summary struct{ TCP, UDP []Range }

// AllowsTCP reports whether the summary accepts the TCP port.
func (s Summary) AllowsTCP(port uint16) bool { return contains(s.TCP, port) }

// AllowsUDP reports whether the summary accepts the UDP port.
func (s Summary) AllowsUDP(port uint16) bool { return contains(s.UDP, port) }

func contains(rs []Range, port uint16) bool {
	i, found := slices.BinarySearchFunc(rs, port, func(r Range, port uint16) int {
		return int(r.Lo) - int(port)
	})
	if found {
		return true
	}
	return i > 0 && port <= rs[i-1].Hi
}

// String returns the summary's one canonical text, as descriptors carry it: for example
// "tcp=80,443,6881-6889 udp=none".
func (s Summary) String() string {
	var b strings.Builder
	b.WriteString("tcp=")
	writeRanges(&b, s.TCP)
	b.WriteString(" udp=")
	writeRanges(&b, s.UDP)
	return b.String()
}

func writeRanges(b *strings.Builder, rs []Range) {
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

// Parse reads what Summary.String writes, and only that: descriptors are signed, and
// one spelling per summary keeps a signature from covering two readings.
func Parse(s string) (Summary, error) {
	tcp, udp, ok := strings.Cut(s, " ")
	if !ok {
		return Summary{}, fmt.Errorf("exitports: port summary %q: want \"tcp=... udp=...\"", s)
	}
	var sum Summary
	var errs []error
	var err error
	if sum.TCP, err = parseRanges(tcp, "tcp="); err != nil {
		errs = append(errs, err)
	}
	if sum.UDP, err = parseRanges(udp, "udp="); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Summary{}, fmt.Errorf("exitports: port summary %q: %w", s, errors.Join(errs...))
	}
	return sum, nil
}

func parseRanges(s, key string) ([]Range, error) {
	list, ok := strings.CutPrefix(s, key)
	if !ok {
		return nil, fmt.Errorf("want %s...", key)
	}
	if list == "none" {
		return nil, nil
	}
	var out []Range
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
		out = append(out, Range{Lo: lo, Hi: hi})
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
