// Command meshvpn-dht-bootstrap runs a MeshVPN bootstrap node: a long-lived DHT node that other nodes
// start from, whose routing table survives restarts, and a STUN server beside it for NAT detection.
// See docs/operators.md.
package main

import (
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/dhtboot"
)

const usage = `meshvpn-dht-bootstrap runs a MeshVPN bootstrap node: a DHT node that other nodes start from, and a
STUN server for NAT detection. It keeps its routing table in the data directory across restarts.

Usage:
  meshvpn-dht-bootstrap [run] [flags]     run the node until SIGINT or SIGTERM (no privileges beyond
                                          its ports; below 1024 only with CAP_NET_BIND_SERVICE)
  meshvpn-dht-bootstrap info [flags]      print this node's DHT and STUN addresses as genesis file
                                          lines ("bootstrap IP:port", "stun IP:port")
  meshvpn-dht-bootstrap check [flags]     check the configuration without starting: "configuration
                                          OK" (exit 0), or the errors (exit 2)
  meshvpn-dht-bootstrap example-config    print a documented configuration file with the defaults
  meshvpn-dht-bootstrap version           print the commit and the Go version this program was built
                                          from

The configuration file (TOML, default ` + dhtboot.DefaultConfigPath + `) is optional; flags override it.

Flags:
`

func main() {
	os.Exit(daemon.Command[dhtboot.Config]{
		Name:    "meshvpn-dht-bootstrap",
		Example: dhtboot.ExampleConfig,
		Load:    loadConfig,
		Run:     run,
		Info:    info,
	}.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// loadConfig reads the config file named by --config (or the default one, if it exists) and applies
// the flags that were given over it.
func loadConfig(args []string, help io.Writer) (dhtboot.Config, error) {
	f := daemon.NewFlags("meshvpn-dht-bootstrap", usage, dhtboot.DefaultConfig(), dhtboot.DefaultConfigPath, help)
	f.String("data-dir", "directory for the saved routing table", func(c *dhtboot.Config) *string { return &c.DataDir })
	f.String("public-ip", "this host's public IP (BEP 42 node id; the address info prints for a wildcard listen)", func(c *dhtboot.Config) *string { return &c.PublicIP })
	f.String("dht-listen", "UDP address of the DHT node", func(c *dhtboot.Config) *string { return &c.DHT.Listen })
	f.List("bootstrap", "the other bootstrap nodes, IP:port,IP:port (empty: this is the first node)", func(c *dhtboot.Config) *[]string { return &c.DHT.Bootstrap })
	f.String("stun-listen", "UDP address of the STUN server; empty turns it off", func(c *dhtboot.Config) *string { return &c.STUN.Listen })
	f.Int("stun-rate", "STUN answers per second at most", func(c *dhtboot.Config) *int { return &c.STUN.Rate })
	f.Logging(func(c *dhtboot.Config) *daemon.Logging { return &c.Logging })
	cfg, err := f.Load(args)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func run(cfg dhtboot.Config) error {
	return daemon.RunUntilSignal(cfg.LogLevel, func(log *zap.Logger) (io.Closer, error) { return dhtboot.Start(cfg, log) })
}

// info prints the addresses a node with this configuration is reached at, as genesis file lines.
func info(cfg dhtboot.Config, w io.Writer) error {
	a, err := cfg.Addresses()
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, a.GenesisLines())
	return err
}
