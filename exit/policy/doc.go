// Package policy decides which destinations an exit forwards to (design property 9).
//
// A Policy has two layers. Built-in protections come first and cover the destinations that no public
// exit should reach on a client's behalf: the exit host itself (loopback, its own addresses), its
// local networks (RFC 1918, ULA, CGNAT, link-local), cloud metadata services, multicast and reserved
// space. Only the flags in Config lift some of them; nothing lifts the rest. Operator rules come
// second, in a Tor-like text syntax, first match wins, and a destination no rule matches is rejected.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) and NAT64 addresses (64:ff9b::a.b.c.d) are judged, by
// the protections and by the rules alike, as the IPv4 address they carry: otherwise a client could
// reach 127.0.0.1 or a private network by spelling it as IPv6. A 6to4 address (2002:V4ADDR::/48) meets
// the protections of the IPv4 address it carries too. In an IPv6 packet (DecideIPv6) an IPv4-mapped
// destination is refused outright: no IPv6 packet can go there.
//
// The IPv6 protections are the IPv4 ones' twins (loopback ::1, link-local fe80::/10, private ULA
// fc00::/7 and site-local fec0::/10, multicast ff00::/8, the unspecified and IPv4-compatible ::/96)
// and the IPv6 ranges that are not the internet: discard-only 100::/64, Teredo 2001::/32, segment
// routing SIDs 5f00::/16, IPv4-translated ::ffff:0:0:0/96. Documentation space (2001:db8::/32) is
// forwarded, as 192.0.2.0/24 and its kin are: test networks stand their internet there.
//
// The rule syntax, one rule per line or several separated by commas, # starting a comment:
//
//	accept|reject ADDR:PORTS[/PROTO]
//
//	ADDR   *  (every address)  *4  (every IPv4 address)  *6  (every IPv6 address)
//	       an address or a CIDR prefix; IPv6 in brackets: [2001:db8::1], [2001:db8::/32]
//	PORTS  *  or a port (443) or an inclusive range (6881-6889); ports are 1-65535
//	PROTO  tcp, udp or icmp (ICMP of the destination's family, so ICMPv6 for IPv6); icmp has no
//	       ports, so it takes *; without PROTO a rule covers every protocol, and a rule that names
//	       ports matches only protocols that have ports (TCP and UDP)
//
// For example:
//
//	reject *:25            # no mail: spam is what gets exits blocked
//	accept *:80,accept *:443
//	accept *:*/icmp
//	reject *:*
package policy
