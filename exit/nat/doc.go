// Package nat gives each client session at an exit its own address from a pool (one IPv4, and one
// IPv6 where the exit carries IPv6) and rewrites packets between the two in userspace.
//
// Every client's TUN uses the same inner address scheme, so packets from two clients can carry the
// same source address. Before a client's packet reaches the exit's TUN, its source becomes the
// session's pool address (RewriteSource); the kernel then masquerades the pool to the public
// interface. A reply to a pool address is given back the client's inner address (RewriteDest) and
// goes to the session that Pool.Lookup names.
//
// Rewrites work in place, never allocate, and patch checksums by the difference (RFC 1624) rather
// than summing the packet again. ICMP errors are rewritten inside too: the packet an error quotes
// names the same host, and a client whose kernel cannot match a "fragmentation needed" to its own
// connection loses path MTU discovery.
//
// IPv6 works the same way with RewriteSource6, RewriteDest6 and a pool from NewPool6. IPv6 has no
// header checksum, but TCP, UDP and ICMPv6 all sum a pseudo-header with the addresses, so each is
// patched, and ICMPv6 errors (Packet Too Big above all: IPv6 routers never fragment) are rewritten
// inside as ICMP errors are. ParseIPv6 walks the extension headers a host sends (hop-by-hop,
// destination options, fragment) to the transport header; a routing header ends the walk and reads
// as a protocol of its own, which the exit does not forward.
package nat
