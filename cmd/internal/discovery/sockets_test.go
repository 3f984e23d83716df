package discovery

import (
	"os"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon/daemontest"
	"github.com/meshvpn/meshvpn/crypto/keys"
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

// A taken port stops the start before anything is made: no identity key, no database, no data
// directory (a botched start must not leave a new authority's key behind).
func TestATakenPortFailsBeforeAnyKeyIsMade(t *testing.T) {
	udp, tcp := daemontest.TakenPorts(t)
	auth := keys.IdentityPublic{1}
	for _, set := range []func(*Config){
		func(c *Config) { c.DHT.Listen = udp },
		func(c *Config) { c.HTTP.Listen = tcp },
		func(c *Config) { c.Metrics = tcp },
	} {
		c := lonelyConfig(t, &auth)
		set(&c)
		if d, err := Start(c, zap.NewNop()); err == nil {
			d.Close()
			t.Fatal("started on a taken port")
		}
		if _, err := os.Stat(c.DataDir); !os.IsNotExist(err) {
			t.Errorf("the data directory %s was made by a start that could not bind: %v", c.DataDir, err)
		}
	}
}
