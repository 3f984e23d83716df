package policy

import (
	"net/netip"
	"strconv"
)

// Reason says why Decide allowed or refused a flow; exits count refusals by reason.
type Reason uint8

// The reasons. The zero Reason is none of them, so a zero Decision does not read as allowed.
const (
	// Allowed: an operator rule accepted the flow.
	Allowed Reason = iota + 1
	// Loopback: 127.0.0.0/8 or ::1, the exit host itself. Lifted by Config.AllowLocal.
	Loopback
	// LinkLocal: 169.254.0.0/16 or fe80::/10. Never lifted (see Config).
	LinkLocal
	// Private: RFC 1918 networks, IPv6 ULA (fc00::/7), deprecated site-local (fec0::/10) and
	// local-use NAT64 (64:ff9b:1::/48). Lifted by Config.AllowPrivate.
	Private
	// CGNAT: the shared address space 100.64.0.0/10. Lifted by Config.AllowPrivate.
	CGNAT
	// Multicast: 224.0.0.0/4 or ff00::/8. Never lifted: a flow has one destination host.
	Multicast
	// Reserved: 0.0.0.0/8, 240.0.0.0/4 (with 255.255.255.255), ::, the deprecated IPv4-compatible
	// ::/96 and IPv4-translated ::ffff:0:0:0/96, discard-only 100::/64, Teredo 2001::/32, segment
	// routing SIDs 5f00::/16, an IPv4-mapped destination of an IPv6 packet (DecideIPv6), and anything
	// that is not an address. Never lifted.
	Reserved
	// Own: one of the exit's own addresses. Lifted by Config.AllowLocal.
	Own
	// Metadata: a cloud provider's instance metadata or credential service. Never lifted.
	Metadata
	// RuleReject: an operator rule rejected the flow.
	RuleReject
	// DefaultReject: no operator rule matched.
	DefaultReject
	// Directory: the flow is TCP to one of the network's directory authorities (Config.Directory),
	// which every exit carries whatever its rules say. Allowed.
	Directory
)

var reasonNames = [...]string{
	Allowed:       "allowed",
	Loopback:      "loopback",
	LinkLocal:     "link-local",
	Private:       "private",
	CGNAT:         "cgnat",
	Multicast:     "multicast",
	Reserved:      "reserved",
	Own:           "own",
	Metadata:      "metadata",
	RuleReject:    "rule-reject",
	DefaultReject: "default-reject",
	Directory:     "directory",
}

// String returns a short lower-case name, fit for logs and metric labels.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

type protection struct {
	prefix prefixBits
	reason Reason
	src    netip.Prefix // as written, for tests to check the compiled form against
}

func protect(prefix string, reason Reason) protection {
	p := netip.MustParsePrefix(prefix)
	return protection{prefixBitsOf(p), reason, p}
}

// The first entry that covers an address decides, so narrower entries come before the ranges that
// hold them: metadata addresses before link-local, CGNAT and ULA, ::1 before ::/96.
//
// Cloud providers answer these addresses from the hypervisor and trust any request that reaches them
// from the instance, handing out instance credentials (AWS IMDS and ECS/EKS credential agents, GCP,
// Azure, Oracle, DigitalOcean, OpenStack, Alibaba). A client reaching them through an exit would take
// the operator's cloud account, so no flag lifts them. Most sit in 169.254.0.0/16, but two do not
// (Alibaba in CGNAT space, Azure's WireServer in public space) and AWS has IPv6 ones in ULA space, so
// they are listed by address and not only covered by the link-local range.
var (
	protected4 = []protection{
		protect("169.254.169.254/32", Metadata), // AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
		protect("169.254.170.2/32", Metadata),   // AWS ECS task credentials
		protect("169.254.170.23/32", Metadata),  // AWS EKS pod identity agent
		protect("100.100.100.200/32", Metadata), // Alibaba Cloud
		protect("168.63.129.16/32", Metadata),   // Azure WireServer
		protect("0.0.0.0/8", Reserved),          // "this network"; Linux delivers 0.0.0.0 to the host itself
		protect("127.0.0.0/8", Loopback),
		protect("10.0.0.0/8", Private),
		protect("172.16.0.0/12", Private),
		protect("192.168.0.0/16", Private),
		protect("100.64.0.0/10", CGNAT),
		// All of link-local, not only the metadata addresses: clouds keep adding services here (time,
		// DNS, credential agents) that trust whoever reaches them from the instance, and no host
		// beyond the exit's own link has such an address, so nothing is lost by refusing it.
		protect("169.254.0.0/16", LinkLocal),
		protect("224.0.0.0/4", Multicast),
		protect("240.0.0.0/4", Reserved), // includes the limited broadcast 255.255.255.255
	}
	protected6 = []protection{
		protect("fd00:ec2::254/128", Metadata), // AWS IMDS over IPv6
		protect("fd00:ec2::23/128", Metadata),  // AWS EKS pod identity agent over IPv6
		protect("::/128", Reserved),
		protect("::1/128", Loopback),
		protect("::/96", Reserved), // deprecated IPv4-compatible addresses; some stacks tunnel them
		// Link-local IPv6 only means something with an interface zone, which a client cannot pick
		// and which would reach the exit's own link, never the internet.
		protect("fe80::/10", LinkLocal),
		protect("fec0::/10", Private), // deprecated site-local, still the local site where in use
		protect("fc00::/7", Private),
		// The local-use NAT64 prefix (RFC 8215) leads to a translator inside the operator's network,
		// with an embedding we cannot know; unlike 64:ff9b::/96 it cannot be judged by its IPv4.
		protect("64:ff9b:1::/48", Private),
		protect("ff00::/8", Multicast),
		// The IPv4-translated addresses of SIIT (RFC 2765, obsolete) carry an IPv4 address for a
		// translator, as mapped ones do, but no packet should still use them.
		protect("::ffff:0:0:0/96", Reserved),
		protect("100::/64", Reserved), // discard-only (RFC 6666): a black hole, never a host
		// Teredo (RFC 4380) tunnels to an IPv4 server and client named inside the address, through
		// relays that may stand in the operator's network; it is dead on the internet.
		protect("2001::/32", Reserved),
		// Segment routing SIDs (RFC 9602) steer packets inside one operator's network.
		protect("5f00::/16", Reserved),
	}
)

// sixToFour is the 6to4 prefix (RFC 3056): 2002:V4ADDR::/48 leads, through a 6to4 relay or the
// exit host's own sit interface, to the IPv4 address V4ADDR. Its protections are that address's, so
// that 2002:7f00:1:: or 2002:c0a8:101:: cannot reach the exit host or its LAN.
var sixToFour = netip.MustParsePrefix("2002::/16")

// embedded6to4 returns the IPv4 address a 6to4 address carries, and whether a is one.
func embedded6to4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || !sixToFour.Contains(a) {
		return netip.Addr{}, false
	}
	b := a.As16()
	return netip.AddrFrom4([4]byte(b[2:6])), true
}

var (
	mapped = netip.MustParsePrefix("::ffff:0:0/96")
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
)

// normalize returns the address a destination is judged as: without its zone, which must not change
// the judgement (netip.Prefix.Contains is false for zoned addresses, and == compares zones), and as
// IPv4 when it is an IPv4-mapped or NAT64 address, since that IPv4 host is where the flow goes.
func normalize(a netip.Addr) netip.Addr {
	a = a.WithZone("").Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}
