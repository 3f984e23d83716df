// Package wgbaseline measures the yardstick that `make bench` holds the MeshVPN tunnel to (design.md
// §7): one TCP flow through a single-hop wireguard-go tunnel between two network namespaces on this
// machine, measured in the same run as the 3-hop tunnel so that the two figures share the machine's
// mood of the moment.
//
// Both wireguard-go devices run inside this process (the module's device, conn and tun packages, with
// TUN offloads), so no wireguard-tools or packaged wireguard-go is needed, and the process's own
// rusage is the CPU that WireGuard spent; the iperf3 processes at either end are not counted.
package wgbaseline
