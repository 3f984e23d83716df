// Package cmd will hold MeshVPN's five binaries, one folder each: meshvpn-client, meshvpn-exit-node,
// meshvpn-dht-bootstrap, meshvpn-discovery and meshvpn-bootstrap. The first of them arrives with the
// VPN issue; nothing is here yet.
package cmd
