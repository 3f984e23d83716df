// Package nat gives each client session at an exit its own IPv4 address from a pool and rewrites
// packets between the two in userspace.
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
// Only IPv4 is handled for now.
package nat
