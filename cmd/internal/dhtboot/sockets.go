package dhtboot

import "github.com/meshvpn/meshvpn/cmd/internal/daemon"

// Sockets are the addresses the node listens at, by their settings: a port another program holds is
// then named by its setting and flag (daemon.ExplainPortTaken).
func (c Config) Sockets() []daemon.Socket {
	return []daemon.Socket{
		{Key: "dht.listen", Net: "udp", Addr: c.DHT.Listen},
		{Key: "stun.listen", Net: "udp", Addr: c.STUN.Listen},
		{Key: "metrics", Net: "tcp", Addr: c.Metrics},
	}
}
