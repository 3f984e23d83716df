package path

import (
	"net/netip"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// MaxWeight is the most a relay's weight counts for. It is far above any real bandwidth in any unit
// the directory may use, and with at most MaxRelays relays the sum of weights fits in a uint64.
const MaxWeight = 1 << 40

// node is a relay of the directory with what selection needs precomputed.
type node struct {
	netdir.Relay
	subnet netip.Prefix // the /16 or /32 that no other hop may share
	weight uint64       // effective weight: never 0, never above MaxWeight
	family map[keys.IdentityPublic]bool
}

func newNode(r netdir.Relay) *node {
	n := &node{
		Relay:  r,
		subnet: subnetOf(r.Addr.Addr()),
		weight: min(r.Weight, MaxWeight),
		family: make(map[keys.IdentityPublic]bool, len(r.Family)),
	}
	for _, id := range r.Family {
		n.family[id] = true
	}
	return n
}

// subnetOf returns the /16 of an IPv4 address (mapped or not) or the /32 of an IPv6 one.
func subnetOf(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 16
	if a.Is6() {
		bits = 32
	}
	p, _ := a.Prefix(bits) // cannot fail: bits is within the address's length
	return p
}

// usable reports whether the relay may take a position at all.
func (n *node) usable() bool {
	return n.Flags.Has(netdir.Running) && !n.Flags.Has(netdir.Degraded)
}

// servesAsRendezvous reports whether m is one of the relays that n, behind a NAT, is reached through.
func (n *node) servesAsRendezvous(m *node) bool {
	for _, rv := range n.Rendezvous {
		if rv.Addr == m.Addr {
			return true
		}
	}
	return false
}

// sameFamily reports whether a and b declare each other.
func sameFamily(a, b *node) bool {
	return a.family[b.Identity] && b.family[a.Identity]
}

// conflict says why a and b may not be in one path ("" when they may), in words that follow
// "shares ..." or "is ...": for example "in the exit's /16" reads after a role name.
func (s *Selector) conflict(a, b *node) string {
	switch {
	case a.Identity == b.Identity:
		return "the same relay"
	case !s.allowSameSubnet && a.subnet == b.subnet:
		return "in the same " + subnetName(a.subnet)
	case sameFamily(a, b):
		return "in the same family"
	}
	return ""
}

func subnetName(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "/16"
	}
	return "/32"
}
