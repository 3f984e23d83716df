// Package exit holds what makes a relay an exit. Its subpackages:
//
//   - policy: exit policies (Tor-like accept/reject rules, built-in protections for loopback, private,
//     link-local, CGNAT, multicast, cloud metadata and the exit's own addresses, port summaries for
//     descriptors);
//   - nat: the session address pool and userspace source NAT (in-place IPv4 rewriting with incremental
//     checksums, ICMP unreachable replies);
//   - session: exit sessions (BEGIN/BEGUN tokens, policy check, userspace SNAT into the exit's TUN,
//     replies back to the session's circuit, a grace period so a rebuilt circuit keeps its session);
//   - masq: the kernel side, one nftables masquerade rule in a table of the exit's own, and forwarding.
package exit
