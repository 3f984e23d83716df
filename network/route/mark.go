package route

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Per-application split tunnelling marks the packets of chosen programs (network/appsplit); marked
// packets must find the host's own way out although the tunnel's halves are in the main table. Two ip
// rules per family send them: first to the main table with its routes of length 0 and 1 suppressed (the
// tunnel's halves and the default route go; the LAN, the relays' and the excluded ranges' routes
// stay), then to a table of the client's own that holds the host's default route, which the table
// follows as it follows the bypass routes.

// markRules is the mark the rules match and the table they send to; zero until MarkOutside.
type markRules struct {
	mark  uint32
	table int
	rules []*netlink.Rule
	// defaults are the default routes the table put in its own table, by family.
	defaults map[int]netlink.Route
}

// rulePriority is where the rules go: before the main table's (32766), after the local table's (0).
const rulePriority = 10330

// MarkOutside sends packets with the firewall mark around the tunnel, through the host's own routes,
// using routing table tableID (which must be the client's alone). Close removes the rules and the
// routes.
func (t *Table) MarkOutside(mark uint32, tableID int) error {
	if mark == 0 || tableID <= 0 || tableID == unix.RT_TABLE_MAIN || tableID >= unix.RT_TABLE_DEFAULT && tableID <= unix.RT_TABLE_LOCAL {
		return fmt.Errorf("route: mark %#x, table %d: want a nonzero mark and a table of the client's own", mark, tableID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("route: table closed")
	}
	if t.marked.mark != 0 {
		return errors.New("route: marked packets already go around the tunnel")
	}
	t.marked = markRules{mark: mark, table: tableID, defaults: map[int]netlink.Route{}}
	mask := uint32(0xffffffff)
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		main := netlink.NewRule()
		main.Family, main.Priority, main.Mark, main.Mask = family, rulePriority, mark, &mask
		main.Table, main.SuppressPrefixlen = unix.RT_TABLE_MAIN, 1
		own := netlink.NewRule()
		own.Family, own.Priority, own.Mark, own.Mask, own.Table = family, rulePriority+1, mark, &mask, tableID
		for _, r := range []*netlink.Rule{main, own} {
			err := t.h.RuleAdd(r)
			if err != nil && family == netlink.FAMILY_V6 && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EACCES)) {
				break // no IPv6 here
			}
			if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: a dead daemon's, the same
				return fmt.Errorf("route: rule for marked packets: %w", err)
			}
			t.marked.rules = append(t.marked.rules, r)
		}
	}
	t.followDefaults()
	return nil
}

// followDefaults puts the host's default routes, as they are now, in the marked packets' table. t.mu
// is held.
func (t *Table) followDefaults() {
	if t.marked.mark == 0 {
		return
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if family == netlink.FAMILY_V6 {
			all = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		old, had := t.marked.defaults[family]
		via, err := t.outside(all)
		if err != nil { // no way out now: the marked packets find none either
			if had {
				t.h.RouteDel(&old)
				delete(t.marked.defaults, family)
			}
			continue
		}
		r := outsideRoute(all, via)
		r.Table = t.marked.table
		if had && old.LinkIndex == r.LinkIndex && old.Gw.Equal(r.Gw) {
			continue
		}
		if err := t.h.RouteReplace(&r); err != nil {
			continue
		}
		t.marked.defaults[family] = r
	}
}

// unmark removes the rules and routes of MarkOutside. t.mu is held.
func (t *Table) unmark() []error {
	var errs []error
	for _, r := range t.marked.rules {
		if err := t.h.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("route: remove a rule for marked packets: %w", err))
		}
	}
	for _, r := range t.marked.defaults {
		if err := t.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("route: remove the marked packets' default route: %w", err))
		}
	}
	t.marked = markRules{}
	return errs
}
