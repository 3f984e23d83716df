// Package dnssplit is split tunnelling by domain name: in the DNS answers that come back through the
// tunnel from the tunnel resolver it finds the addresses of the names the user sends around the tunnel
// (a name and every name under it), so that the client can route those addresses outside before the
// program that asked reads the answer. It parses, and touches no socket or route.
package dnssplit

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Matcher knows the listed names.
type Matcher struct {
	names map[string]bool // fully qualified, lower case
}

// NewMatcher returns a Matcher for the domains, each a DNS name ("bank.example"; its subdomains go
// with it). It reports every name that is not one.
func NewMatcher(domains []string) (*Matcher, error) {
	m := &Matcher{names: map[string]bool{}}
	var bad []string
	for _, d := range domains {
		fq := dns.Fqdn(strings.ToLower(strings.TrimSpace(d)))
		if _, ok := dns.IsDomainName(fq); !ok || fq == "." || strings.ContainsAny(fq, " *\\") || dns.CountLabel(fq) < 1 {
			bad = append(bad, fmt.Sprintf("%q", d))
			continue
		}
		m.names[fq] = true
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not domain names: %s", strings.Join(bad, ", "))
	}
	return m, nil
}

// Match reports whether name (fully qualified or not) is a listed name or under one.
func (m *Matcher) Match(name string) bool {
	fq := dns.Fqdn(strings.ToLower(name))
	for off, end := 0, false; !end; off, end = dns.NextLabel(fq, off) {
		if m.names[fq[off:]] {
			return true
		}
	}
	return false
}

// Addrs returns the IPv4 and IPv6 addresses that pkt, an IP packet coming out of the tunnel, answers
// for a listed name, when it is a UDP datagram from server's port 53; nil otherwise. Anything
// malformed is nil too.
func (m *Matcher) Addrs(pkt []byte, server netip.Addr) []netip.Addr {
	payload, ok := udpFrom(pkt, server, 53)
	if !ok {
		return nil
	}
	var msg dns.Msg
	if err := msg.Unpack(payload); err != nil || !msg.Response || msg.Rcode != dns.RcodeSuccess || len(msg.Question) != 1 || !m.Match(msg.Question[0].Name) {
		return nil
	}
	var out []netip.Addr
	for _, rr := range msg.Answer {
		var a netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			a, ok = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			a, ok = netip.AddrFromSlice(r.AAAA.To16())
		default:
			continue
		}
		if ok && a.IsValid() && !a.IsUnspecified() {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// udpFrom returns the payload of pkt when it is a whole (unfragmented) UDP datagram from src:port.
func udpFrom(pkt []byte, src netip.Addr, port uint16) ([]byte, bool) {
	var l4 []byte
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4 && src.Is4():
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		fragment := binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 // MF or an offset
		if ihl < 20 || total < ihl || total > len(pkt) || fragment || pkt[9] != 17 || netip.AddrFrom4([4]byte(pkt[12:16])) != src {
			return nil, false
		}
		l4 = pkt[ihl:total]
	case len(pkt) >= 40 && pkt[0]>>4 == 6 && src.Is6():
		total := 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		if total > len(pkt) || pkt[6] != 17 || netip.AddrFrom16([16]byte(pkt[8:24])) != src {
			return nil, false
		}
		l4 = pkt[40:total]
	default:
		return nil, false
	}
	if len(l4) < 8 || binary.BigEndian.Uint16(l4[0:2]) != port {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(l4[4:6]))
	if n < 8 || n > len(l4) {
		return nil, false
	}
	return l4[8:n], true
}
