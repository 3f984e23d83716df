package clientd

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/network/dnssplit"
)

// Split tunnelling by name (exclude_domains): every DNS answer that comes back through the tunnel from
// the tunnel resolver is looked at before the program that asked gets it; the addresses it gives for a
// listed name are routed around the tunnel (route.Exclude) and let through the kill switch, before
// the answer is delivered, so the program's first packet already takes the way outside. Addresses stay
// outside until the client stops: a connection must not move into the tunnel when a record expires.

// maxLearnt bounds the addresses learnt from answers (a name that answers with ever new addresses
// must not grow the routing table without end).
const maxLearnt = 4096

// domainSplit routes the addresses of the listed names around the tunnel.
type domainSplit struct {
	d *Daemon
	m *dnssplit.Matcher

	mu      sync.Mutex
	learnt  map[netip.Addr]bool // seen, whether or not a route outside could be made
	outside []netip.Prefix      // what the kill switch lets through: the exclude ranges, then the learnt ones
	full    bool                // maxLearnt reached (said once in the log)
}

// startDomainSplit begins to watch the answers, when names are listed.
func (d *Daemon) startDomainSplit() {
	if len(d.cfg.ExcludeDomains) == 0 {
		return
	}
	m, err := dnssplit.NewMatcher(d.cfg.ExcludeDomains)
	if err != nil {
		return // Validate refused it
	}
	exclude, _ := d.cfg.split()
	d.domains.Store(&domainSplit{d: d, m: m, learnt: map[netip.Addr]bool{}, outside: exclude})
}

// observe takes the addresses of a listed name out of pkt, a packet out of the tunnel, and routes each
// new one around the tunnel.
func (s *domainSplit) observe(pkt []byte) {
	addrs := s.m.Addrs(pkt, exitdns.Addr)
	if len(addrs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, a := range addrs {
		if s.learnt[a] {
			continue
		}
		if len(s.learnt) >= maxLearnt {
			if !s.full {
				s.full = true
				s.d.log.Warn("exclude_domains: too many addresses learnt; further ones stay in the tunnel", zap.Int("max", maxLearnt))
			}
			continue
		}
		s.learnt[a] = true
		p := netip.PrefixFrom(a, a.BitLen())
		if err := s.d.routes.Exclude(p); err != nil { // no way out for this family: it stays in the tunnel
			// The error names the address, a destination of the user's: not logged.
			s.d.log.Info("exclude_domains: an address stays in the tunnel: no way out for its family", zap.Bool("ipv6", a.Is6()))
			continue
		}
		s.outside = append(s.outside, p)
		changed = true
	}
	if changed && s.d.fw != nil {
		if err := s.d.fw.SetExclude(s.outside); err != nil {
			s.d.log.Warn("exclude_domains: the kill switch", zap.Error(err))
		}
	}
}

// resolveDomains looks each listed name up once through the tunnel resolver, as the client starts: the
// answers come back through the tunnel and are observed like the programs' own.
func (d *Daemon) resolveDomains(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	server := netip.AddrPortFrom(exitdns.Addr, 53).String()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", server)
	}}
	for _, name := range d.cfg.ExcludeDomains {
		r.LookupNetIP(ctx, "ip", name) // a name that does not resolve now may later: programs' lookups are observed
	}
}
