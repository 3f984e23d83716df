package route

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A host's network changes under a running tunnel: Wi-Fi gives way to Ethernet, a DHCP lease moves
// the default route. When the interface a bypass route went through goes away, the kernel drops the
// route without a word (IPv4 sends no RTM_DELROUTE for routes flushed with their device), and the
// relay's packets would fall into the tunnel's own halves: the client's link to its guard dies, and
// the client moves to another guard. So the table listens to the kernel's link, address and route
// news, and after each burst puts every bypass back through the way out the host has now. The links
// themselves follow their new source address (network/link roaming).

// follow starts listening to the kernel's news; Close stops it.
func (t *Table) follow() error {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
		unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
	if err != nil {
		return fmt.Errorf("route: follow the host's network: %w", err)
	}
	t.watch = s
	t.wg.Go(func() {
		for {
			// Which change it was does not matter: each burst of news is one look at every bypass.
			if _, _, err := s.Receive(); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return // closed (ENOBUFS: news was lost, which is news too)
			}
			t.refresh()
		}
	})
	return nil
}

// refresh puts back each bypass (and excluded range) whose route is gone, through the most specific way out there is
// now. One with no way out yet waits for the next change.
func (t *Table) refresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for p, h := range t.bypass {
		via, err := t.outside(p)
		if err != nil || isRouteTo(via, p) {
			continue
		}
		r := outsideRoute(p, via)
		err = t.h.RouteAdd(&r)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			continue
		}
		t.forget(p)
		if h.ours = err == nil; h.ours { // EEXIST: a route of someone else's keeps p out now
			t.added = append(t.added, r)
		}
	}
	t.followDefaults()
}

// isRouteTo reports whether r is a route to p itself.
func isRouteTo(r netlink.Route, p netip.Prefix) bool {
	q, ok := prefixOf(r.Dst)
	return r.Dst != nil && ok && q == p
}

// forget drops the table's record of its route to p (the kernel dropped the route itself). t.mu is
// held.
func (t *Table) forget(p netip.Prefix) {
	want := ipNet(p).String()
	for i, r := range t.added {
		if r.Dst != nil && r.Dst.String() == want && r.LinkIndex != t.index {
			t.added = append(t.added[:i], t.added[i+1:]...)
			return
		}
	}
}
