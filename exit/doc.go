// Package exit will hold what makes a relay an exit: exit policies (ports, CIDRs, default deny of
// private and local ranges), exit sessions with per-session source NAT, the exit's TUN device and the
// kernel NAT rules, and bandwidth limits. It arrives with the VPN issue; nothing is here yet.
package exit
