// Package route steers a client host's traffic into its tunnel: the whole IPv4 and IPv6 internet goes
// to the TUN device (as two halves, 0.0.0.0/1 and 128.0.0.0/1, which are more specific than any default
// route and leave it in place), while the relays the client reaches directly — its guards — keep the
// route they had before, so the tunnel's own packets do not loop into it — also when the host's network
// changes under it (follow.go). Split tunnelling uses the same two moves: ranges the user excludes keep
// the host's route as the relays do (Exclude), and in include mode only the ranges the user names go
// into the tunnel (TunnelOnly). Everything a Table adds it removes on Close, and nothing else.
package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Table is the set of routes one tunnel added.
type Table struct {
	tun   string
	index int
	// h is a netlink handle in the namespace the table was made in: every route change goes through
	// it, whichever thread (and so namespace) the goroutine calling runs on.
	h *netlink.Handle
	// watch hears of the host's link, address and route changes; Close closes it.
	watch *nl.NetlinkSocket
	wg    sync.WaitGroup

	mu     sync.Mutex
	added  []netlink.Route
	bypass map[netip.Prefix]*hold
	marked markRules // mark.go
	closed bool
}

// hold is one prefix kept outside the tunnel (a relay's address, a range the user excludes), by how
// many Bypass or Exclude calls not yet released.
type hold struct {
	n    int
	ours bool // the table added the route (else someone else's already kept addr out)
}

// halves are the routes that send everything into the tunnel.
var halves = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1"),
	netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1"),
}

// New returns a Table for the TUN device named tun (which must exist), in the caller's network
// namespace. It follows the host's network changes until Close (follow.go).
func New(tun string) (*Table, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("route: netlink: %w", err)
	}
	l, err := h.LinkByName(tun)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("route: %s: %w", tun, err)
	}
	t := &Table{tun: tun, index: l.Attrs().Index, h: h, bypass: map[netip.Prefix]*hold{}}
	if err := t.follow(); err != nil {
		h.Close()
		return nil, err
	}
	return t, nil
}

// Bypass routes addr (a relay the client talks to directly) the way it went before the tunnel: by the
// most specific route to it that does not use the tunnel. Calls for an address already outside add
// nothing; the route stays until Close, or until as many Release calls as Bypass calls.
func (t *Table) Bypass(addr netip.Addr) error {
	addr = addr.Unmap()
	if err := t.keepOutside(netip.PrefixFrom(addr, addr.BitLen())); err != nil {
		return fmt.Errorf("route: bypass for a relay: %w", err)
	}
	return nil
}

// Exclude routes the prefix p outside the tunnel (split tunnelling), the way it went before: by the most
// specific route that holds all of p and does not use the tunnel. The route stays until Close, and
// follows the host's network as the relays' routes do. A prefix of length 0 or 1 would take the place
// of the tunnel's own routes: turn route_all off instead.
func (t *Table) Exclude(p netip.Prefix) error {
	if !p.IsValid() || p.Bits() < 2 {
		return fmt.Errorf("route: cannot exclude %v from the tunnel", p)
	}
	if err := t.keepOutside(p.Masked()); err != nil {
		return fmt.Errorf("route: exclude a range from the tunnel: %w", err)
	}
	return nil
}

// keepOutside routes p by the most specific route to all of it that does not use the tunnel, or
// counts one more holder of a route already there.
func (t *Table) keepOutside(p netip.Prefix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("table closed")
	}
	if h := t.bypass[p]; h != nil {
		h.n++
		return nil
	}
	via, err := t.outside(p)
	if err != nil {
		return err
	}
	r := outsideRoute(p, via)
	if err := t.h.RouteAdd(&r); err != nil {
		if errors.Is(err, unix.EEXIST) { // a route of someone else's: it already keeps p out
			t.bypass[p] = &hold{n: 1}
			return nil
		}
		return err
	}
	t.added = append(t.added, r)
	t.bypass[p] = &hold{n: 1, ours: true}
	return nil
}

// outsideRoute is the route that sends p the way via goes.
func outsideRoute(p netip.Prefix, via netlink.Route) netlink.Route {
	r := netlink.Route{
		Dst:       ipNet(p),
		Gw:        via.Gw,
		LinkIndex: via.LinkIndex,
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_STATIC,
	}
	if via.Gw == nil {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// Release undoes one Bypass of addr: when none is left, addr goes into the tunnel again.
func (t *Table) Release(addr netip.Addr) error {
	addr = addr.Unmap()
	p := netip.PrefixFrom(addr, addr.BitLen())
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.bypass[p]
	if t.closed || h == nil {
		return nil
	}
	if h.n--; h.n > 0 {
		return nil
	}
	delete(t.bypass, p)
	if !h.ours {
		return nil
	}
	want := ipNet(p).String()
	for i, r := range t.added {
		if r.Dst != nil && r.Dst.String() == want && r.LinkIndex != t.index {
			t.added = append(t.added[:i], t.added[i+1:]...)
			if err := t.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("route: remove the bypass for %v: %w", addr, err)
			}
			return nil
		}
	}
	return nil
}

// outside finds the most specific main-table route to all of want that does not go into the tunnel.
func (t *Table) outside(want netip.Prefix) (netlink.Route, error) {
	addr := want.Addr()
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	routes, err := t.h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netlink.Route{}, fmt.Errorf("route: list routes: %w", err)
	}
	best, bits := netlink.Route{}, -1
	for _, r := range routes {
		if r.LinkIndex == t.index || r.Type != unix.RTN_UNICAST {
			continue
		}
		p := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if addr.Is4() {
			p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if r.Dst != nil {
			var ok bool
			if p, ok = prefixOf(r.Dst); !ok {
				continue
			}
		}
		if p.Bits() <= want.Bits() && p.Contains(addr) && p.Bits() > bits {
			best, bits = r, p.Bits()
		}
	}
	if bits < 0 {
		return netlink.Route{}, errors.New("no route outside the tunnel")
	}
	if best.LinkIndex == 0 && len(best.MultiPath) > 0 {
		best.LinkIndex, best.Gw = best.MultiPath[0].LinkIndex, best.MultiPath[0].Gw
	}
	return best, nil
}

// TunnelAll sends the whole internet into the tunnel. IPv6 goes there too (carried when the exit
// carries IPv6, dropped inside the tunnel rather than leaked when it does not); a host without IPv6
// skips those routes.
func (t *Table) TunnelAll() error { return t.tunnel(halves) }

// TunnelOnly sends only the prefixes ps into the tunnel (split tunnelling's include mode): everything
// else keeps the host's own routes. An IPv6 prefix on a host without IPv6 is skipped.
func (t *Table) TunnelOnly(ps []netip.Prefix) error {
	for _, p := range ps {
		if !p.IsValid() || p.Bits() == 0 {
			return fmt.Errorf("route: cannot send %v into the tunnel alone", p)
		}
	}
	return t.tunnel(ps)
}

func (t *Table) tunnel(ps []netip.Prefix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("route: table closed")
	}
	for _, p := range ps {
		r := netlink.Route{Dst: ipNet(p.Masked()), LinkIndex: t.index, Scope: netlink.SCOPE_LINK, Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_STATIC}
		err := t.h.RouteAdd(&r)
		if err != nil && p.Addr().Is6() && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.ENETDOWN)) {
			continue // IPv6 is off on this host: nothing to leak
		}
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("route: %v is already routed through another device: another VPN holds it? (stop it, or route yourself with tun.route_all = false): %w", p, err)
		}
		if err != nil {
			return fmt.Errorf("route: %v into %s: %w", p, t.tun, err)
		}
		t.added = append(t.added, r)
	}
	return nil
}

// Close stops following the host's changes and removes every route the table added, newest first.
func (t *Table) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.watch.Close()
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := t.unmark()
	for i := len(t.added) - 1; i >= 0; i-- {
		r := t.added[i]
		if err := t.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("route: remove %v: %w", r.Dst, err))
		}
	}
	t.added = nil
	t.h.Close()
	return errors.Join(errs...)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
