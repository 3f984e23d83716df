// Package netdir is a client's view of the network: [Relay], the one in-memory form of a relay (what
// building a circuit through it needs, and what path selection weighs), and [NetDir], an immutable
// snapshot of the relays a client may use, built from a consensus and the descriptors it names
// ([FromConsensus], what a [Fetcher] returns) or from a plain list ([FromList], the relay list file).
//
// A relay attribute lives in two places: the descriptor format (core/descriptor), which relays publish,
// and Relay, which everything past the directory reads (path selection, the circuit manager, the
// client). [FromDescriptor] is the one conversion between them.
package netdir

import (
	"net/netip"
	"strings"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Flags are what the directory says of a relay; the bits are directory.Flags'.
type Flags uint8

// The flags a relay can carry.
const (
	Running  = Flags(directory.Running)  // answered the directory's last probes
	Guard    = Flags(directory.Guard)    // stable and fast enough to be an entry guard
	Exit     = Flags(directory.Exit)     // forwards to the internet under its port summary
	Stable   = Flags(directory.Stable)   // long uptime
	Fast     = Flags(directory.Fast)     // high bandwidth
	Degraded = Flags(directory.Degraded) // marked by the health monitor: takes no position in a path
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

// Relay is one relay as a client knows it: its keys and address (what a circuit build needs), and what
// the directory says of it (what path selection weighs). A Relay in a NetDir is shared: do not modify
// its slices.
type Relay struct {
	Identity keys.IdentityPublic // Ed25519
	// Name is the relay's self-chosen name: for people, and for a Named exit choice when no other
	// relay claims it. It is not authenticated. A directory's relays are named by the first 8
	// characters of their identity.
	Name string
	// Addr is the address clients connect to; it is the one the /16 (/32) rule looks at.
	Addr    netip.AddrPort
	LinkKey keys.StaticPublic // X25519; the relay's static key in link handshakes
	Onion   keys.StaticPublic // X25519; the B of circuit handshakes
	// Rendezvous lists, preferred first, the public nodes a relay behind a NAT is registered with
	// (empty for a public relay): links to it are dialled through the first (link.Node.DialVia) rather
	// than at Addr, which its NAT would not let in; path selection keeps them all out of the middle of
	// a path that this relay ends, so that one relay's failure does not take both the middle and the
	// only way to the exit that the client's directory knows.
	Rendezvous []descriptor.Rendezvous
	// Family lists the relays the operator declares to be theirs; two relays are one family only if
	// each lists the other.
	Family []keys.IdentityPublic
	Flags  Flags
	// Weight is the measured bandwidth weight; 0 means not measured yet (see core/path).
	Weight uint64
	// Bandwidth is what the relay advertises (bytes/s); path selection weighs by Weight, not this.
	Bandwidth uint64
	// Exit summarises the ports the relay exits to; it counts only with the Exit flag.
	Exit exitports.Summary
	// IPv6 says that the exit carries IPv6; it counts only with the Exit flag.
	IPv6            bool
	Country, Region string
}

// String names the relay in messages: its name and identity, or its identity alone.
func (r Relay) String() string {
	if r.Name == "" {
		return r.Identity.String()
	}
	return r.Name + " (" + r.Identity.String() + ")"
}

// IsExit reports whether the relay's port summary accepts some port (as descriptor.IsExit does),
// whatever its flags say.
func (r Relay) IsExit() bool { return len(r.Exit.TCP) > 0 || len(r.Exit.UDP) > 0 }

// FromDescriptor returns the relay d describes, reached at addr (one of d.Addresses: the caller
// chooses), with no flags and no weight: what a directory says of it is FromConsensus's to add.
func FromDescriptor(d *descriptor.Descriptor, addr netip.AddrPort) Relay {
	name := d.Name // the operator's label; the identity's first characters when there is none
	if name == "" {
		name = d.Identity.String()[:8]
	}
	return Relay{
		Identity:   d.Identity,
		Name:       name,
		Addr:       addr,
		LinkKey:    d.LinkKey,
		Onion:      d.OnionKey,
		Rendezvous: d.Rendezvous,
		Family:     d.Family,
		Bandwidth:  d.Bandwidth,
		Exit:       d.Exit,
		IPv6:       d.IPv6,
		Country:    d.Country,
		Region:     d.Region,
	}
}
