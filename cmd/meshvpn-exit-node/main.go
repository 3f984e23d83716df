// Command meshvpn-exit-node runs a MeshVPN relay and, unless --relay-only, an exit: the last hop of
// circuits, which forwards its clients' packets to the internet under its exit policy and NATs them to
// this host's address. See docs/operators.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

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
                                      port). Keys are made on first start in the data directory.
  meshvpn-exit-node info [flags]      print this node's relay list entry (its address and public keys),
                                      for clients' relay list files; makes the keys if there are none
  meshvpn-exit-node example-config    print a documented configuration file with the defaults

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
	}.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// loadConfig reads the config file named by --config (or the default one, if it exists) and applies
// the flags that were given over it.
func loadConfig(args []string, stderr io.Writer) (exitnode.Config, error) {
	fs := flag.NewFlagSet("meshvpn-exit-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	def := exitnode.DefaultConfig()
	path := fs.String("config", exitnode.DefaultConfigPath, "configuration file (TOML); see example-config")
	var over exitnode.Config
	fs.StringVar(&over.Name, "name", def.Name, "node name in the relay list")
	fs.StringVar(&over.DataDir, "data-dir", def.DataDir, "directory for keys and relay.toml")
	fs.StringVar(&over.Listen, "listen", def.Listen, "UDP address of the node's links")
	fs.StringVar(&over.PublicAddress, "public-address", def.PublicAddress, "IP:port clients reach this node at (needed when --listen is a wildcard)")
	fs.BoolVar(&over.RelayOnly, "relay-only", def.RelayOnly, "be a guard/middle relay only: never exit, touch no host networking")
	fs.StringVar(&over.Metrics, "metrics", def.Metrics, "Prometheus metrics address (loopback); empty turns them off")
	fs.StringVar(&over.LogLevel, "log-level", def.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&over.Link.KeepaliveInterval, "keepalive", def.Link.KeepaliveInterval, "link keepalive interval")
	fs.DurationVar(&over.Link.DeadAfter, "dead-after", def.Link.DeadAfter, "a link silent this long is dead")
	fs.DurationVar(&over.RatchetEvery, "ratchet-every", def.RatchetEvery, "how often circuits' layer keys move on (ratchet_every)")
	fs.StringVar(&over.Exit.Pool, "pool", def.Exit.Pool, "exit session address range (IPv4)")
	fs.StringVar(&over.Exit.Pool6, "pool6", def.Exit.Pool6, "exit session IPv6 address range (a ULA, /96 to /126); empty: carry no IPv6")
	fs.StringVar(&over.Exit.TUN, "tun", def.Exit.TUN, "exit TUN device name")
	fs.StringVar(&over.Exit.TUNBackend, "tun-backend", def.Exit.TUNBackend, "TUN backend: wireguard or water")
	if err := fs.Parse(args); err != nil {
		return exitnode.Config{}, err
	}
	if fs.NArg() > 0 {
		return exitnode.Config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cfg := def
	if err := daemon.LoadConfig(*path, &cfg, !given["config"]); err != nil {
		return cfg, err
	}
	set := func(name string, dst *string, v string) {
		if given[name] {
			*dst = v
		}
	}
	set("name", &cfg.Name, over.Name)
	set("data-dir", &cfg.DataDir, over.DataDir)
	set("listen", &cfg.Listen, over.Listen)
	set("public-address", &cfg.PublicAddress, over.PublicAddress)
	set("metrics", &cfg.Metrics, over.Metrics)
	set("log-level", &cfg.LogLevel, over.LogLevel)
	set("pool", &cfg.Exit.Pool, over.Exit.Pool)
	set("pool6", &cfg.Exit.Pool6, over.Exit.Pool6)
	set("tun", &cfg.Exit.TUN, over.Exit.TUN)
	set("tun-backend", &cfg.Exit.TUNBackend, over.Exit.TUNBackend)
	if given["relay-only"] {
		cfg.RelayOnly = over.RelayOnly
	}
	if given["keepalive"] {
		cfg.Link.KeepaliveInterval = over.Link.KeepaliveInterval
	}
	if given["dead-after"] {
		cfg.Link.DeadAfter = over.Link.DeadAfter
	}
	if given["ratchet-every"] {
		cfg.RatchetEvery = over.RatchetEvery
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
	k, err := exitnode.LoadKeys(cfg.DataDir, log)
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
