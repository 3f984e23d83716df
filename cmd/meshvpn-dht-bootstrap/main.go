// Command meshvpn-dht-bootstrap runs a MeshVPN bootstrap node: a long-lived DHT node that other nodes
// start from, whose routing table survives restarts, and a STUN server beside it for NAT detection.
// See docs/operators.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

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
  meshvpn-dht-bootstrap example-config    print a documented configuration file with the defaults

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
func loadConfig(args []string, stderr io.Writer) (dhtboot.Config, error) {
	fs := flag.NewFlagSet("meshvpn-dht-bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	def := dhtboot.DefaultConfig()
	path := fs.String("config", dhtboot.DefaultConfigPath, "configuration file (TOML); see example-config")
	var over dhtboot.Config
	var bootstrap string
	fs.StringVar(&over.DataDir, "data-dir", def.DataDir, "directory for the saved routing table")
	fs.StringVar(&over.PublicIP, "public-ip", def.PublicIP, "this host's public IP (BEP 42 node id; the address info prints for a wildcard listen)")
	fs.StringVar(&over.DHT.Listen, "dht-listen", def.DHT.Listen, "UDP address of the DHT node")
	fs.StringVar(&bootstrap, "bootstrap", strings.Join(def.DHT.Bootstrap, ","), "the other bootstrap nodes, IP:port,IP:port (empty: this is the first node)")
	fs.StringVar(&over.STUN.Listen, "stun-listen", def.STUN.Listen, "UDP address of the STUN server; empty turns it off")
	fs.IntVar(&over.STUN.Rate, "stun-rate", def.STUN.Rate, "STUN answers per second at most")
	fs.StringVar(&over.Metrics, "metrics", def.Metrics, "Prometheus metrics address (loopback); empty turns them off")
	fs.StringVar(&over.LogLevel, "log-level", def.LogLevel, "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return dhtboot.Config{}, err
	}
	if fs.NArg() > 0 {
		return dhtboot.Config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
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
	set("data-dir", &cfg.DataDir, over.DataDir)
	set("public-ip", &cfg.PublicIP, over.PublicIP)
	set("dht-listen", &cfg.DHT.Listen, over.DHT.Listen)
	set("stun-listen", &cfg.STUN.Listen, over.STUN.Listen)
	set("metrics", &cfg.Metrics, over.Metrics)
	set("log-level", &cfg.LogLevel, over.LogLevel)
	if given["bootstrap"] {
		cfg.DHT.Bootstrap = splitList(bootstrap)
	}
	if given["stun-rate"] {
		cfg.STUN.Rate = over.STUN.Rate
	}
	return cfg, cfg.Validate()
}

// splitList splits a comma-separated flag value; an empty one is an empty list.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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
