// Package network is MeshVPN's data-plane transport. Its subpackages:
//
//   - link: one UDP socket per node carrying encrypted, authenticated links between neighbours
//     (a Noise-IK 1-RTT handshake, counters and a sliding replay window, rekeying, keepalives and
//     dead-peer detection, roaming, handshake rate limits).
//
// STUN and NAT type detection, hole punching, relay fallback and the TUN device wrapper arrive with
// later issues.
package network
