// Package network is MeshVPN's data-plane transport. Its subpackages:
//
//   - link: one UDP socket per node carrying encrypted, authenticated links between neighbours
//     (a Noise-IK 1-RTT handshake, counters and a sliding replay window, rekeying, keepalives and
//     dead-peer detection, roaming, handshake rate limits, batched writes);
//   - tun: TUN devices behind one batch-shaped interface (golang.zx2c4.com/wireguard/tun by default,
//     github.com/songgao/water selectable, an in-memory Channel for tests).
//
// STUN and NAT type detection, hole punching and relay fallback arrive with later issues.
package network
