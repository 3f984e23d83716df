// Package dns is the exit's tunnel resolver: the DNS server a client reaches inside its tunnel at
// Addr (docs/protocol.md, "The tunnel resolver"). A query the client sends there travels through its
// circuit like any packet; the exit's session engine hands it to a Resolver instead of the internet,
// which asks the exit host's own resolver (the nameservers of its /etc/resolv.conf) and writes the
// answer back into the session as an IPv4/UDP packet from Addr. So the names a client looks up are
// seen by no one on its own network, and the resolver that answers sees the exit, not the client.
//
// Queries are parsed and answers built with github.com/miekg/dns. The resolver asks a fresh question
// of its own (a new id, none of the client's EDNS options: no client subnet, no cookie), bounds how
// many questions are in flight (in all and per session), answers names of private and local zones
// with NXDOMAIN itself (RFC 6303, RFC 6761) rather than asking the exit's resolver what its own network
// calls them, and counts every query it drops. It never logs a name.
package dns
