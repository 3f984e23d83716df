package clientd

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/meshvpn/meshvpn/exit/dns"
)

// Split tunnelling: `exclude` sends the ranges it lists around the tunnel, through the host's own
// route, and `include` sends only its ranges through the tunnel. Either way network/route puts the
// routes in and network/firewall lets exactly that traffic through the kill switch.

// split returns the parsed exclude and include ranges (Validate has checked them; a bad one is
// left out).
func (c *Config) split() (exclude, include []netip.Prefix) {
	parse := func(list []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range list {
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p)
			}
		}
		return out
	}
	return parse(c.Exclude), parse(c.Include)
}

// validateSplit reports every problem with exclude and include.
func (c *Config) validateSplit() []error {
	var errs []error
	if len(c.Exclude) > 0 && len(c.Include) > 0 {
		errs = append(errs, errors.New("exclude and include: set one or the other (exclude sends all but its ranges through the tunnel, include only its ranges)"))
	}
	if (len(c.Exclude) > 0 || len(c.Include) > 0) && !c.TUN.RouteAll {
		errs = append(errs, errors.New("exclude, include: split tunnelling needs tun.route_all = true"))
	}
	// The tunnel's own addresses never leave it: its address, its IPv6 address and the tunnel resolver.
	own := []netip.Prefix{netip.PrefixFrom(dns.Addr, 32)}
	for _, a := range []string{c.TUN.Address, c.TUN.Address6} {
		if p, err := netip.ParsePrefix(a); err == nil {
			own = append(own, p.Masked())
		}
	}
	for _, l := range []struct {
		key  string
		list []string
		min  int // the shortest prefix length allowed
		why  string
	}{
		{"exclude", c.Exclude, 2, "that takes the tunnel's own routes' place: set tun.route_all = false to leave everything outside"},
		{"include", c.Include, 1, "that is everything: leave include empty to send everything through the tunnel"},
	} {
		var seen []netip.Prefix
		for _, s := range l.list {
			p, err := netip.ParsePrefix(s)
			if err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				errs = append(errs, fmt.Errorf("%s %q: want an address range such as 192.0.2.0/24 or 2001:db8::/32", l.key, s))
				continue
			}
			if p != p.Masked() {
				errs = append(errs, fmt.Errorf("%s %q: has address bits beyond its length: did you mean %v?", l.key, s, p.Masked()))
				continue
			}
			if p.Bits() < l.min {
				errs = append(errs, fmt.Errorf("%s %q: %s", l.key, s, l.why))
				continue
			}
			for _, o := range own {
				if l.key == "exclude" && o.Overlaps(p) { // in include mode they are inside anyway
					errs = append(errs, fmt.Errorf("%s %q: overlaps the tunnel's own addresses (%v)", l.key, s, o))
				}
			}
			for _, q := range seen {
				if q.Overlaps(p) {
					errs = append(errs, fmt.Errorf("%s %q and %q overlap: list each address once", l.key, q, s))
				}
			}
			seen = append(seen, p)
		}
	}
	return errs
}
