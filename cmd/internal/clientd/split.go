package clientd

import (
	"errors"
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/network/appsplit"
	"github.com/meshvpn/meshvpn/network/dnssplit"
)

// Per-application split tunnelling (exclude_cgroup): the packets of programs in the group get this
// firewall mark, and the marked packets are routed by this routing table (network/appsplit,
// route.MarkOutside).
const (
	splitMark  = 0x6d760001
	splitTable = 0x6d76
)

// outsideMark is the mark the kill switch lets through: the split group's, when there is one.
func (c *Config) outsideMark() uint32 {
	if c.ExcludeCgroup == "" || !c.TUN.RouteAll {
		return 0
	}
	return splitMark
}

// startAppSplit makes the split group and sends its programs' packets around the tunnel. A host
// without cgroup v2 goes without, and says so.
func (d *Daemon) startAppSplit() error {
	if d.cfg.outsideMark() == 0 {
		return nil
	}
	if _, _, err := appsplit.GroupPath(d.cfg.ExcludeCgroup); err != nil {
		d.log.Warn("per-application split tunnelling is off", zap.Error(err))
		return nil
	}
	var err error
	if d.apps, err = appsplit.Start(appsplit.Config{Cgroup: d.cfg.ExcludeCgroup, TUN: d.cfg.TUN.Name, Mark: splitMark}); err != nil {
		return err
	}
	d.stack.Closer("per-application split", d.apps)
	return d.routes.MarkOutside(splitMark, splitTable)
}

// RemoveAppSplit takes away the split group's marking table a dead daemon left (a running one removes
// it when it stops): after `down`, nothing goes around the tunnel by program.
func RemoveAppSplit() error { return appsplit.Remove(0) }

// ExcludeGroup returns the directory of the split group, which must exist (the daemon makes it).
func ExcludeGroup(cfg Config) (string, error) {
	if cfg.ExcludeCgroup == "" {
		return "", errors.New("exclude_cgroup is \"\": per-application split tunnelling is off")
	}
	dir, _, err := appsplit.GroupPath(cfg.ExcludeCgroup)
	return dir, err
}

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
	if c.ExcludeCgroup != "" && (c.ExcludeCgroup == "/" || len(c.ExcludeCgroup) > 200) {
		errs = append(errs, fmt.Errorf("exclude_cgroup %q: want a group's path, relative to the cgroup v2 root or absolute, or \"\"", c.ExcludeCgroup))
	}
	if (len(c.Exclude) > 0 || len(c.Include) > 0 || len(c.ExcludeDomains) > 0) && !c.TUN.RouteAll {
		errs = append(errs, errors.New("exclude, include, exclude_domains: split tunnelling needs tun.route_all = true"))
	}
	if len(c.ExcludeDomains) > 0 {
		if len(c.Include) > 0 {
			errs = append(errs, errors.New("exclude_domains and include: in include mode only the included ranges go through the tunnel; list the names' ranges there instead"))
		}
		if _, err := dnssplit.NewMatcher(c.ExcludeDomains); err != nil {
			errs = append(errs, fmt.Errorf("exclude_domains: %w", err))
		}
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
