package dns

import (
	"strings"

	"github.com/miekg/dns"
)

// MaxQuery is the largest DNS message a client may send to the tunnel resolver. A question with EDNS
// and padding fits in a few hundred bytes; anything larger is dropped and counted.
const MaxQuery = 1232

// verdict is what the resolver does with a query it could parse.
type verdict int

const (
	forward verdict = iota // ask the exit's resolver
	local                  // a private or local name: NXDOMAIN, answered here
	refuse                 // a query the resolver does not serve: REFUSED
	notImpl                // an opcode other than QUERY: NOTIMP
	formErr                // not one question: FORMERR
)

// judge decides what becomes of a parsed query. search holds the exit host's own search domains
// (lower case, fully qualified): names under them are its network's, as private as 10/8.
func judge(q *dns.Msg, search []string) verdict {
	switch {
	case q.Opcode != dns.OpcodeQuery:
		return notImpl
	case len(q.Question) != 1 || len(q.Answer) != 0 || len(q.Ns) != 0:
		return formErr
	}
	qq := q.Question[0]
	if qq.Qclass != dns.ClassINET {
		return refuse // CHAOS and friends describe the exit's resolver, not the internet
	}
	switch qq.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return refuse
	}
	name := strings.ToLower(dns.Fqdn(qq.Name))
	if isLocal(name) {
		return local
	}
	for _, s := range search {
		if dns.IsSubDomain(s, name) {
			return local
		}
	}
	return forward
}

// localZones are names that only a local network can answer: special-use names (RFC 6761, RFC 6762,
// RFC 8375, the ICANN-reserved "internal"), names that home routers serve, and the reverse zones of
// private, loopback, link-local and shared address space (RFC 6303, RFC 7793). Asking the exit's
// resolver would tell the client what the exit's own network calls them.
var localZones = func() map[string]bool {
	m := map[string]bool{
		"localhost.": true, "local.": true, "internal.": true, "home.arpa.": true, "invalid.": true,
		"lan.": true, "localdomain.": true, "intranet.": true, "corp.": true, "home.": true, "private.": true,
		"10.in-addr.arpa.": true, "127.in-addr.arpa.": true, "0.in-addr.arpa.": true,
		"254.169.in-addr.arpa.": true, "168.192.in-addr.arpa.": true, "255.255.255.255.in-addr.arpa.": true,
		"c.f.ip6.arpa.": true, "d.f.ip6.arpa.": true,
		"8.e.f.ip6.arpa.": true, "9.e.f.ip6.arpa.": true, "a.e.f.ip6.arpa.": true, "b.e.f.ip6.arpa.": true,
		// ::1 and ::
		"1." + strings.Repeat("0.", 31) + "ip6.arpa.": true,
		strings.Repeat("0.", 32) + "ip6.arpa.":        true,
	}
	for i := 16; i < 32; i++ {
		m[itoa(i)+".172.in-addr.arpa."] = true
	}
	for i := 64; i < 128; i++ {
		m[itoa(i)+".100.in-addr.arpa."] = true
	}
	return m
}()

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// isLocal reports whether name (lower case, fully qualified) is in one of localZones.
func isLocal(name string) bool {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if localZones[name[off:]] {
			return true
		}
	}
	return false
}
