//go:build linux

package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// parseSockaddr decodes a sockaddr_in or sockaddr_in6 as the kernel writes it (family in host byte
// order, port and address in network byte order) without allocating.
func parseSockaddr(b []byte, zones *zoneName) (netip.AddrPort, bool) {
	if len(b) < 4 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), true
	case unix.AF_INET6:
		if len(b) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if scope := binary.NativeEndian.Uint32(b[24:28]); scope != 0 {
			a = a.WithZone(zones.name(scope))
		}
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// zoneName names IPv6 scopes (interface indices) as the standard library does: by interface name, or
// by number if there is no such interface. It remembers the last one, so a link-local peer costs an
// interface lookup only when its scope changes.
type zoneName struct {
	index uint32
	zone  string
}

func (z *zoneName) name(index uint32) string {
	if index != z.index { // never 0: only scoped addresses are named
		z.index = index
		if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
			z.zone = ifi.Name
		} else {
			z.zone = strconv.FormatUint(uint64(index), 10)
		}
	}
	return z.zone
}

// putSockaddr encodes ap as a sockaddr for a socket of the family inet6 names (an IPv4 address as
// IPv4-mapped on an IPv6 socket) and returns its length. It refuses an IPv6 address for an IPv4
// socket. A zone is resolved to its interface index, which costs a lookup: callers keep the result.
func putSockaddr(b *[unix.SizeofSockaddrInet6]byte, ap netip.AddrPort, inet6 bool) (uint32, bool) {
	*b = [unix.SizeofSockaddrInet6]byte{}
	a := ap.Addr()
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	if !inet6 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, false
		}
		binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
		a4 := a.As4()
		copy(b[4:8], a4[:])
		return unix.SizeofSockaddrInet4, true
	}
	if !a.IsValid() {
		return 0, false
	}
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET6)
	a16 := a.As16()
	copy(b[8:24], a16[:])
	if zone := a.Zone(); zone != "" {
		index, err := strconv.ParseUint(zone, 10, 32)
		if err != nil {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return 0, false
			}
			index = uint64(ifi.Index)
		}
		binary.NativeEndian.PutUint32(b[24:28], uint32(index))
	}
	return unix.SizeofSockaddrInet6, true
}
