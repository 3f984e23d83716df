// Command meshvpn-exit-node runs a MeshVPN relay and, unless --relay-only, an exit: the last hop of
// circuits, which forwards its clients' packets to the internet under its exit policy and NATs them to
// this host's address. See docs/operators.md.
package main

import (
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/exitnode"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/netdir"
)

const usage = `meshvpn-exit-node runs a MeshVPN relay, and unless --relay-only an exit to the internet.

Usage:
  meshvpn-exit-node [run] [flags]     run the node until SIGINT or SIGTERM (root, for an exit's TUN
                                      device and NAT; a relay-only node needs no privileges beyond its
                                      port). Keys are made on first start in the data directory; a
                                      missing identity.key beside the other keys is refused (a restore
                                      that lost it?) unless --new-identity.
  meshvpn-exit-node info [flags]      print this node's relay list entry (its address and public keys),
                                      for clients' relay list files; makes the keys if there are none
  meshvpn-exit-node check [flags]     check the configuration, the genesis file and the keys in the
                                      data directory without starting: "configuration OK" (exit 0),
                                      or the errors (exit 2)
  meshvpn-exit-node example-config    print a documented configuration file with the defaults
  meshvpn-exit-node version           print the commit and the Go version this program was built from

The configuration file (TOML, default ` + exitnode.DefaultConfigPath + `) is optional; flags override it.

Flags:
`

func main() {
	os.Exit(daemon.Command[exitnode.Config]{
		Name:    "meshvpn-exit-node",
		Example: exitnode.ExampleConfig,
		Load:    loadConfig,
		Run:     run,
		Info:    info,
		Check:   exitnode.Check,
	}.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// loadConfig reads the config file named by --config (or the default one, if it exists) and applies
// the flags that were given over it.
func loadConfig(args []string, help io.Writer) (exitnode.Config, error) {
	type C = exitnode.Config
	f := daemon.NewFlags("meshvpn-exit-node", usage, exitnode.DefaultConfig(), exitnode.DefaultConfigPath, help)
	f.String("name", "node name in the relay list", func(c *C) *string { return &c.Name })
	f.String("data-dir", "directory for keys and relay.toml", func(c *C) *string { return &c.DataDir })
	f.String("listen", "UDP address of the node's links", func(c *C) *string { return &c.Listen })
	f.String("public-address", "IP:port clients reach this node at (needed when --listen is a wildcard)", func(c *C) *string { return &c.PublicAddress })
	f.Bool("relay-only", "be a guard/middle relay only: never exit, touch no host networking", func(c *C) *bool { return &c.RelayOnly })
	f.String("genesis", "the network's genesis file: join its DHT and publish this node's descriptor there", func(c *C) *string { return &c.Genesis })
	f.String("dht-listen", "UDP address of the node's DHT socket (with --genesis)", func(c *C) *string { return &c.DHTListen })
	f.Bool("new-identity", "make a new identity key although the data directory holds a node's other keys (a new relay)", func(c *C) *bool { return &c.NewIdentity })
	f.Logging(func(c *C) *daemon.Logging { return &c.Logging })
	f.Link(func(c *C) *daemon.LinkTimers { return &c.Link })
	f.Duration("ratchet-every", "how often circuits' layer keys move on (ratchet_every)", func(c *C) *time.Duration { return &c.RatchetEvery })
	f.String("pool", "exit session address range (IPv4)", func(c *C) *string { return &c.Exit.Pool })
	f.String("pool6", "exit session IPv6 address range (a ULA, /96 to /126); empty: carry no IPv6", func(c *C) *string { return &c.Exit.Pool6 })
	f.String("tun", "exit TUN device name", func(c *C) *string { return &c.Exit.TUN })
	f.String("tun-backend", "TUN backend: wireguard or water", func(c *C) *string { return &c.Exit.TUNBackend })
	cfg, err := f.Load(args)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func run(cfg exitnode.Config) error {
	return daemon.RunUntilSignal(cfg.LogLevel, func(log *zap.Logger) (io.Closer, error) { return exitnode.Start(cfg, log) })
}

func info(cfg exitnode.Config, out io.Writer) error {
	log, err := daemon.NewLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	k, err := exitnode.LoadKeys(cfg.DataDir, cfg.NewIdentity, log)
	if err != nil {
		return err
	}
	e := exitnode.EntryFor(cfg, k)
	text, err := relaylist.Encode([]netdir.Relay{e})
	if err != nil {
		return err
	}
	_, err = out.Write(text)
	return err
}
