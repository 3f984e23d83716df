// Command meshvpn-discovery runs a MeshVPN discovery authority: it crawls the DHT for the network's
// relays, checks their signed descriptors, probes them, and publishes a signed, hash-chained
// directory over HTTP and the DHT. See docs/operators.md.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/discovery"
)

const usage = `meshvpn-discovery runs a MeshVPN discovery authority.

Once a period it finds the network's relays on the DHT, asks each who it is, fetches and checks its
signed descriptor, probes it through a one-hop circuit (latency, throughput, whether it answers), and
publishes a signed directory document that chains to the previous one: over HTTP (GET /v1/directory,
/v1/directory/{serial}, /v1/descriptors) and as a pointer on the DHT. Clients trust the relays that a
threshold of the genesis file's authorities list.

Usage:
  meshvpn-discovery [run] [flags]     run the authority until SIGINT or SIGTERM (no privileges needed
                                      beyond its ports). The identity key is made on first start in
                                      the data directory; it must be one of the genesis file's
                                      authorities. A missing identity.key beside the database is
                                      refused (a restore that lost it?) unless --new-identity.
  meshvpn-discovery info [flags]      print this authority's identity (public key, base64), for
                                      meshvpn-bootstrap init to put in a genesis file; makes the key
                                      if there is none. Needs no genesis file.
  meshvpn-discovery check [flags]     check the configuration, the genesis file and that it lists
                                      this authority's key, without starting: "configuration OK"
                                      (exit 0), or the errors (exit 2)
  meshvpn-discovery example-config    print a documented configuration file with the defaults
  meshvpn-discovery version           print the commit and the Go version this program was built from

The configuration file (TOML, default ` + discovery.DefaultConfigPath + `) is optional; flags override it.

Flags:
`

func main() {
	os.Exit(daemon.Command[discovery.Config]{
		Name:    "meshvpn-discovery",
		Example: discovery.ExampleConfig,
		Load:    loadConfig,
		Run:     run,
		Info:    info,
		Check:   discovery.Check,
	}.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// loadConfig reads the config file named by --config (or the default one, if it exists) and applies
// the flags that were given over it.
func loadConfig(args []string, help io.Writer) (discovery.Config, error) {
	type C = discovery.Config
	f := daemon.NewFlags("meshvpn-discovery", usage, discovery.DefaultConfig(), discovery.DefaultConfigPath, help)
	f.String("genesis", "the network's genesis file", func(c *C) *string { return &c.Genesis })
	f.String("data-dir", "directory for the identity key, the database and the DHT routing table", func(c *C) *string { return &c.DataDir })
	f.String("dht-listen", "UDP address of the DHT node", func(c *C) *string { return &c.DHT.Listen })
	f.String("public-ip", "this host's public IP (BEP 42 node id when dht-listen is a wildcard)", func(c *C) *string { return &c.DHT.PublicIP })
	f.String("http-listen", "TCP address the directory is served at", func(c *C) *string { return &c.HTTP.Listen })
	f.String("probe-source", "IP address whois questions and probe circuits leave from", func(c *C) *string { return &c.Probe.Source })
	f.Bool("new-identity", "make a new identity key although the data directory holds an authority's database", func(c *C) *bool { return &c.NewIdentity })
	f.Logging(func(c *C) *daemon.Logging { return &c.Logging })
	f.Duration("period", "one round (crawl, probes, a new directory) per period", func(c *C) *time.Duration { return &c.Period })
	f.Duration("validity", "how long each directory is valid (0: three periods)", func(c *C) *time.Duration { return &c.Validity })
	f.Duration("probe-timeout", "how long one probe may take", func(c *C) *time.Duration { return &c.Probe.Timeout })
	f.Duration("stable-age", "how long a relay must be known to be Stable", func(c *C) *time.Duration { return &c.Flags.StableAge })
	cfg, err := f.Load(args)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func run(cfg discovery.Config) error {
	return daemon.RunUntilSignal(cfg.LogLevel, func(log *zap.Logger) (io.Closer, error) { return discovery.Start(cfg, log) })
}

// info prints the authority's identity, creating the key if need be. It reads no genesis file: the
// genesis is made from it.
func info(cfg discovery.Config, out io.Writer) error {
	log, err := daemon.NewLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	id, err := discovery.LoadIdentity(cfg.DataDir, cfg.NewIdentity, log)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, id.Public())
	return err
}
