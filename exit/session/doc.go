// Package session is the exit's side of a user's traffic: it gives each client session its own address
// from the NAT pool, checks every packet against the exit policy, rewrites sources in userspace and
// writes packets into the exit's TUN device (where the kernel masquerades them to the internet), and
// maps replies back to the session's circuit.
//
// A session outlives its circuit for a grace period. A client that rebuilds its circuit to the same exit
// (after a guard or middle failed) presents the session's token in BEGIN and gets the same pool address
// back, so its open TCP connections survive the re-route (design property 8).
//
// With an IPv6 pool (Config.Pool6) a session has an IPv6 address too and its IPv6 is carried the same
// way (ipv6.go); without one, IPv6 is dropped and counted.
package session
