// Package scale holds the discovery scale run of `make bench` (design.md §7: 1,000 simulated relays
// found and directory-published in under 60 s): one process on loopback with a DHT of 1,000 nodes, of
// which 300 are relays (meshvpn-exit-node's code, publishing their descriptors and answering whois),
// and one discovery authority that crawls, probes and lists them.
package scale
