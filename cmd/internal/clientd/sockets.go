package clientd

import "github.com/meshvpn/meshvpn/cmd/internal/daemon"

// Sockets are the addresses the daemon listens at, by their settings: a port another program holds
// is then named by its setting and flag (daemon.ExplainPortTaken).
func (c Config) Sockets() []daemon.Socket {
	return []daemon.Socket{{Key: "listen", Net: "udp", Addr: c.Listen}, {Key: "metrics", Net: "tcp", Addr: c.Metrics}}
}
