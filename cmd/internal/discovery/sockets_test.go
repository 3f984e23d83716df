package discovery

import (
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon/daemontest"
)

// TestTakenPortIsNamed: a port of the authority that another program holds (the DHT bootstrap node's
// 6881 was once the authority's default too) fails Start with an error that names the setting and
// its flag, as meshvpn-discovery prints it.
func TestTakenPortIsNamed(t *testing.T) {
	udp, tcp := daemontest.TakenPorts(t)
	for _, tc := range []struct {
		key, flag, addr string
		set             func(*Config, string)
	}{
		{"dht.listen", "--dht-listen", udp, func(c *Config, a string) { c.DHT.Listen = a }},
		{"http.listen", "--http-listen", tcp, func(c *Config, a string) { c.HTTP.Listen = a }},
		{"metrics", "--metrics", tcp, func(c *Config, a string) { c.Metrics = a }},
	} {
		c := lonelyConfig(t, nil)
		tc.set(&c, tc.addr)
		daemontest.PortNamed(t, tc.key, tc.flag, tc.addr, c.Sockets(), func() (func() error, error) {
			d, err := Start(c, zap.NewNop())
			if err != nil {
				return nil, err
			}
			return d.Close, nil
		})
	}
}
