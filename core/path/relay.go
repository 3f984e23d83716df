package path

import (
	"net/netip"
	"strings"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Flags are what the directory says of a relay.
type Flags uint8

// The flags a relay can carry.
const (
	Running  Flags = 1 << iota // answered the directory's last probes
	Guard                      // stable and fast enough to be an entry guard
	Exit                       // forwards to the internet under its port summary
	Stable                     // long uptime
	Fast                       // high bandwidth
	Degraded                   // marked by the health monitor: takes no position in a path
)

var flagNames = []string{"Running", "Guard", "Exit", "Stable", "Fast", "Degraded"}

// Has reports whether f holds every flag of g.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String returns the flags joined by "|", for example "Running|Guard"; "none" for no flags.
func (f Flags) String() string {
	var names []string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Relay is one relay of the consensus, as path selection sees it.
type Relay struct {
	Identity keys.IdentityPublic
	// Name is the relay's self-chosen name: for people, and for a Named exit choice when no other
	// relay claims it. It is not authenticated.
	Name string
	// Addr is the address clients connect to; it is the one the /16 (/32) rule looks at.
	Addr netip.AddrPort
	// Family lists the relays the operator declares to be theirs; two relays are one family only if
	// each lists the other.
	Family []keys.IdentityPublic
	// Weight is the measured bandwidth weight; 0 means not measured yet (see the package docs).
	Weight uint64
	Flags  Flags
	// Exit summarises the ports the relay exits to; it counts only with the Exit flag.
	Exit exitports.Summary
	// IPv6 says that the exit carries IPv6 (its descriptor's IPv6); it counts only with the Exit flag.
	IPv6            bool
	Country, Region string
	// Rendezvous lists the addresses of the relays that a relay behind a NAT is registered with
	// (empty for a public relay): path selection keeps them out of the middle of a path that this
	// relay ends, so that one relay's failure does not take both the middle and the only way to the
	// exit that the client's directory knows.
	Rendezvous []netip.AddrPort
}

// String names the relay in messages: its name and identity, or its identity alone.
func (r Relay) String() string {
	if r.Name == "" {
		return r.Identity.String()
	}
	return r.Name + " (" + r.Identity.String() + ")"
}

// MaxWeight is the most a relay's weight counts for. It is far above any real bandwidth in any unit
// the directory may use, and with at most MaxRelays relays the sum of weights fits in a uint64.
const MaxWeight = 1 << 40

// MaxRelays is the largest consensus a Selector accepts.
const MaxRelays = 1 << 20

// node is a consensus relay with what selection needs precomputed.
type node struct {
	Relay
	subnet netip.Prefix // the /16 or /32 that no other hop may share
	weight uint64       // effective weight: never 0, never above MaxWeight
	family map[keys.IdentityPublic]bool
}

func newNode(r Relay) *node {
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
	return n.Flags.Has(Running) && !n.Flags.Has(Degraded)
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
