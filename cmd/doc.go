// Package cmd holds MeshVPN's five binaries, one folder each: meshvpn-client, meshvpn-exit-node,
// meshvpn-dht-bootstrap, meshvpn-discovery and meshvpn-bootstrap. They are assembly: each binary's
// flags, configuration file and wiring live in cmd/internal/<daemon> (clientd, exitnode, discovery,
// dhtboot), what they share (config loading, logging, metrics) in cmd/internal/daemon, and the
// protocol and system logic in the library modules (crypto, network, dht, core, exit).
package cmd
