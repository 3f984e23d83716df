package cmd

import (
	"fmt"
	"net"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/dhtboot"
	"github.com/meshvpn/meshvpn/cmd/internal/discovery"
	"github.com/meshvpn/meshvpn/cmd/internal/exitnode"
)

// TestPortPlan keeps the port plan of docs/operators.md ("Ports"): every daemon at its defaults, and
// ten relays numbered 0 to 9 on ports 70N0, 70N1 and 931N (relay 0 at the exit node's defaults), all
// on one host without two on one port.
func TestPortPlan(t *testing.T) {
	type owned struct {
		owner string
		daemon.Socket
	}
	var all []owned
	add := func(owner string, ss []daemon.Socket) {
		for _, s := range ss {
			all = append(all, owned{owner, s})
		}
	}
	add("meshvpn-client", clientd.DefaultConfig().Sockets())
	add("meshvpn-dht-bootstrap", dhtboot.DefaultConfig().Sockets())
	add("meshvpn-discovery", discovery.DefaultConfig().Sockets())
	def := exitnode.DefaultConfig()
	for n := range 10 {
		c := exitnode.DefaultConfig()
		c.Genesis = "/etc/meshvpn/genesis"
		c.Listen, c.DHTListen, c.Metrics = fmt.Sprintf("0.0.0.0:70%d0", n), fmt.Sprintf("0.0.0.0:70%d1", n), fmt.Sprintf("127.0.0.1:931%d", n)
		if n == 0 && (c.Listen != def.Listen || c.DHTListen != def.DHTListen || c.Metrics != def.Metrics) {
			t.Fatalf("relay 0 of the plan (%s, %s, %s) is not the exit node's defaults (%s, %s, %s)",
				c.Listen, c.DHTListen, c.Metrics, def.Listen, def.DHTListen, def.Metrics)
		}
		add(fmt.Sprintf("relay %d", n), c.Sockets())
	}
	taken := map[string]owned{}
	for _, s := range all {
		_, port, err := net.SplitHostPort(s.Addr)
		if err != nil || port == "0" {
			continue // off, or a port the kernel chooses
		}
		key := s.Net + "/" + port
		if o, ok := taken[key]; ok {
			t.Errorf("%s %s (%s) and %s %s (%s) both take %s", o.owner, o.Key, o.Addr, s.owner, s.Key, s.Addr, key)
		}
		taken[key] = s
	}
}
