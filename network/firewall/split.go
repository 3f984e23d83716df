package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Split tunnelling lets the user send some traffic around the tunnel on purpose: ranges excluded from
// it (out4, out6), or in include mode everything but the included ranges (in4, in6). The kill switch
// lets exactly that through, to and from those addresses, and nothing else; DNS to them stays blocked
// (the host's DNS goes through the tunnel, and a query around it would tell the local network every
// name). The sets are interval sets, each range one start and one end element.

// buildSplit adds the split tunnelling sets, filled from the configuration, to c's batch.
func (k *KillSwitch) buildSplit(c *nftables.Conn) error {
	t := k.table
	k.sets.out4 = &nftables.Set{Table: t, Name: "outside4", KeyType: nftables.TypeIPAddr, Interval: true}
	k.sets.out6 = &nftables.Set{Table: t, Name: "outside6", KeyType: nftables.TypeIP6Addr, Interval: true}
	k.sets.in4 = &nftables.Set{Table: t, Name: "inside4", KeyType: nftables.TypeIPAddr, Interval: true}
	k.sets.in6 = &nftables.Set{Table: t, Name: "inside6", KeyType: nftables.TypeIP6Addr, Interval: true}
	out4, out6, err := intervals(k.cfg.Exclude)
	if err != nil {
		return err
	}
	in4, in6, err := intervals(k.cfg.Include)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{k.sets.out4, out4}, {k.sets.out6, out6}, {k.sets.in4, in4}, {k.sets.in6, in6}} {
		if err := c.AddSet(s.set, s.elems); err != nil {
			return fmt.Errorf("kill switch: set %s: %w", s.set.Name, err)
		}
	}
	return nil
}

// SetExclude replaces the ranges excluded from the tunnel that the kill switch lets through, in one
// batch: a range in both the old and the new list is never blocked in between.
func (k *KillSwitch) SetExclude(ps []netip.Prefix) error {
	out4, out6, err := intervals(ps)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := conn(k.cfg.NetNSFd)
	if err != nil {
		return err
	}
	c.FlushSet(k.sets.out4)
	c.FlushSet(k.sets.out6)
	if len(out4) > 0 {
		if err := c.SetAddElements(k.sets.out4, out4); err != nil {
			return fmt.Errorf("kill switch: update %s: %w", k.sets.out4.Name, err)
		}
	}
	if len(out6) > 0 {
		if err := c.SetAddElements(k.sets.out6, out6); err != nil {
			return fmt.Errorf("kill switch: update %s: %w", k.sets.out6.Name, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("kill switch: update the excluded ranges: %w", err)
	}
	k.cfg.Exclude = slices.Clone(ps)
	return nil
}

// splitRules let through, by destination (or source), the excluded ranges and, in include mode, every
// address outside the included ones.
func splitRules(cfg Config, s sets, source bool) [][]expr.Any {
	off4, off6 := uint32(16), uint32(24)
	if source {
		off4, off6 = 12, 8
	}
	rules := [][]expr.Any{
		// ip daddr @outside4 accept; ip6 daddr @outside6 accept
		cat(nfproto(unix.NFPROTO_IPV4), lookupAddr(off4, 4, s.out4), accept()),
		cat(nfproto(unix.NFPROTO_IPV6), lookupAddr(off6, 16, s.out6), accept()),
	}
	if cfg.OutsideMark != 0 && !source {
		// meta mark M accept: what the programs of the split cgroup send (their replies are
		// established)
		rules = append(rules, cat(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.OutsideMark)}, accept()))
	}
	if len(cfg.Include) > 0 {
		// ip daddr != @inside4 accept; ip6 daddr != @inside6 accept
		rules = append(rules,
			cat(nfproto(unix.NFPROTO_IPV4), notIn(lookupAddr(off4, 4, s.in4)), accept()),
			cat(nfproto(unix.NFPROTO_IPV6), notIn(lookupAddr(off6, 16, s.in6)), accept()))
	}
	return rules
}

// notIn turns a lookup's match around.
func notIn(e []expr.Any) []expr.Any {
	e[len(e)-1].(*expr.Lookup).Invert = true
	return e
}

// intervals returns the interval set elements of ps, by family. Ranges inside others are left out
// (the kernel refuses overlapping intervals).
func intervals(ps []netip.Prefix) (v4, v6 []nftables.SetElement, err error) {
	var kept []netip.Prefix
	for _, p := range ps {
		if !p.IsValid() {
			return nil, nil, fmt.Errorf("kill switch: invalid range %v", p)
		}
		kept = append(kept, p.Masked())
	}
	slices.SortFunc(kept, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	var uniq []netip.Prefix
	for _, p := range kept {
		if !slices.ContainsFunc(uniq, func(q netip.Prefix) bool { return q.Contains(p.Addr()) && q.Bits() <= p.Bits() }) {
			uniq = append(uniq, p)
		}
	}
	for _, p := range uniq {
		elems := []nftables.SetElement{{Key: p.Addr().AsSlice()}}
		if end, ok := after(p); ok { // a range to the family's last address has no end element
			elems = append(elems, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
		if p.Addr().Is4() {
			v4 = append(v4, elems...)
		} else {
			v6 = append(v6, elems...)
		}
	}
	return v4, v6, nil
}

// after returns the first address after p, if there is one.
func after(p netip.Prefix) (netip.Addr, bool) {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	next := last.Next()
	return next, next.IsValid()
}
