// Package network will hold MeshVPN's data-plane transport: one UDP socket per node, encrypted and
// authenticated links between neighbours (a Noise-IK-shaped 1-RTT handshake with counters, a sliding
// replay window, rekeying and roaming), STUN and NAT type detection, UDP hole punching, relay fallback
// and the TUN device wrapper. It arrives with the links-and-circuits issue; nothing is here yet.
package network
