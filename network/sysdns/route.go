package sysdns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeServer sends packets for server into the link, whatever other routes say (a LAN in 10/8 is
// more specific than the tunnel's halves of the address space), and returns what removes the route
// again. The route goes with the link when the link goes.
func routeServer(link string, server netip.Addr) (func() error, error) {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("route to the tunnel resolver: %w", err)
	}
	r := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       &net.IPNet{IP: server.AsSlice(), Mask: net.CIDRMask(server.BitLen(), server.BitLen())},
		Scope:     netlink.SCOPE_LINK,
		Protocol:  unix.RTPROT_STATIC,
	}
	if err := netlink.RouteReplace(r); err != nil {
		return nil, fmt.Errorf("route to the tunnel resolver: %w", err)
	}
	return func() error {
		if err := netlink.RouteDel(r); err != nil && err != unix.ESRCH {
			if _, gone := netlink.LinkByIndex(r.LinkIndex); gone != nil {
				return nil // the link is gone, and the route with it
			}
			return fmt.Errorf("route to the tunnel resolver: %w", err)
		}
		return nil
	}, nil
}
