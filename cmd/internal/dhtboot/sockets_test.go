package dhtboot

import (
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon/daemontest"
)

// TestTakenPortIsNamed: a port of the node that another program holds fails Start with an error that
// names the setting and its flag, as meshvpn-dht-bootstrap prints it.
func TestTakenPortIsNamed(t *testing.T) {
	udp, tcp := daemontest.TakenPorts(t)
	for _, tc := range []struct {
		key, flag, addr string
		set             func(*Config, string)
	}{
		{"dht.listen", "--dht-listen", udp, func(c *Config, a string) { c.DHT.Listen = a }},
		{"stun.listen", "--stun-listen", udp, func(c *Config, a string) { c.STUN.Listen = a }},
		{"metrics", "--metrics", tcp, func(c *Config, a string) { c.Metrics = a }},
	} {
		c := testConfig(t)
		tc.set(&c, tc.addr)
		daemontest.PortNamed(t, tc.key, tc.flag, tc.addr, c.Sockets(), func() (func() error, error) {
			n, err := Start(c, zap.NewNop())
			if err != nil {
				return nil, err
			}
			return n.Close, nil
		})
	}
}
