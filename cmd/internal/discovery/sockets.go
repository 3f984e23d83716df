package discovery

import "github.com/meshvpn/meshvpn/cmd/internal/daemon"

// Sockets are the addresses the authority listens at, by their settings: a port another program
// holds is then named by its setting and flag (daemon.ExplainPortTaken).
func (c Config) Sockets() []daemon.Socket {
	return []daemon.Socket{
		{Key: "dht.listen", Net: "udp", Addr: c.DHT.Listen},
		{Key: "http.listen", Net: "tcp", Addr: c.HTTP.Listen},
		{Key: "metrics", Net: "tcp", Addr: c.Metrics},
	}
}
