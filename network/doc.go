// Package network is MeshVPN's transport and the host networking the daemons change. Its subpackages:
//
//   - link: one UDP socket per node carrying encrypted, authenticated links between neighbours
//     (a Noise-IK 1-RTT handshake, counters and a sliding replay window, rekeying, keepalives and
//     dead-peer detection, roaming, cookies under load), NAT traversal through a rendezvous (hole
//     punching, relay fallback); its socket I/O (batches, UDP GSO/GRO) is link/internal/udp;
//   - stun: the STUN server (pion/stun/v3 messages); natcheck: NAT mapping detection against it;
//   - tun: TUN devices behind one batch-shaped interface (golang.zx2c4.com/wireguard/tun by default,
//     github.com/songgao/water selectable, an in-memory Channel for tests);
//   - route, firewall, sysdns, appsplit, dnssplit: the client host's routes, kill switch (nftables),
//     DNS setting and split tunnelling (by program, by name);
//   - tamper: an on-path attacker for tests; wireaddr: addresses on the wire.
package network
