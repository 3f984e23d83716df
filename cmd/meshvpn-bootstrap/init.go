package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

const initUsage = `meshvpn-bootstrap init writes a new network's genesis file: the trust anchor every node and
client of the network is given. It names the discovery authorities (their keys, from
"meshvpn-discovery info", and where they serve their directory), how many must agree, and the DHT
bootstrap and STUN servers (from "meshvpn-dht-bootstrap info"). The network id is new and random.

  meshvpn-bootstrap init --name demo \
      --authority 'KEY@http://198.51.100.1:8080,auth1' --authority 'KEY@http://…,auth2' \
      --authority 'KEY@http://…,auth3' --threshold 2 \
      --bootstrap 198.51.100.9:6881 --stun 198.51.100.9:3478 --out /etc/meshvpn

Besides the genesis file it writes example configs for each kind of node that point at it
(client.toml, exit-node.toml, discovery.toml), unless --no-configs.

Flags:
`

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runInit(args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var auths, boots, stuns listFlag
	name := fs.String("name", "", "the network's name")
	threshold := fs.Int("threshold", 0, "authorities that must agree (default: a majority)")
	out := fs.String("out", ".", "folder to write the genesis file (and example configs) into")
	noConfigs := fs.Bool("no-configs", false, "write only the genesis file")
	fs.Var(&auths, "authority", "an authority: KEY@URL[,NAME] (repeat for each)")
	fs.Var(&boots, "bootstrap", "a DHT bootstrap node's IP:port (repeat)")
	fs.Var(&stuns, "stun", "a STUN server's IP:port (repeat)")
	if code, ok := parseFlags(fs, args, initUsage, os.Stdout, os.Stderr); !ok {
		return code
	}
	g, err := genesisFrom(*name, auths, *threshold, boots, stuns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshvpn-bootstrap init:", err)
		return 2
	}
	path, err := writeNetwork(g, *out, !*noConfigs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshvpn-bootstrap init:", err)
		return 1
	}
	fmt.Printf("network %q: genesis file %s (network id %x…, %d authorities, %d must agree)\n", g.Name, path, g.NetworkID[:6], len(g.Authorities), g.Threshold)
	return 0
}

// genesisFrom builds and checks a genesis from the command line's values, reporting every problem.
func genesisFrom(name string, auths []string, threshold int, boots, stuns []string) (*genesis.Genesis, error) {
	g := &genesis.Genesis{Name: name, Threshold: threshold}
	var errs []error
	for _, a := range auths {
		key, rest, ok := strings.Cut(a, "@")
		url, aname, _ := strings.Cut(rest, ",")
		id, err := keys.ParseIdentityPublic(key)
		if !ok || err != nil {
			errs = append(errs, fmt.Errorf("--authority %q: want KEY@URL[,NAME] with the key meshvpn-discovery info prints", a))
			continue
		}
		g.Authorities = append(g.Authorities, genesis.Authority{Identity: id, URL: url, Name: aname})
	}
	if g.Threshold == 0 {
		g.Threshold = genesis.MinThreshold(len(g.Authorities))
	}
	for _, list := range []struct {
		flag string
		in   []string
		out  *[]netip.AddrPort
	}{{"--bootstrap", boots, &g.Bootstrap}, {"--stun", stuns, &g.STUN}} {
		for _, s := range list.in {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", list.flag, s, err))
				continue
			}
			*list.out = append(*list.out, ap)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var err error
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// writeNetwork writes the genesis file, and with configs the example configs beside it; it never
// replaces a file that is there.
func writeNetwork(g *genesis.Genesis, dir string, configs bool) (string, error) {
	text, err := g.Encode()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(filepath.Join(dir, "genesis"))
	if err != nil {
		return "", err
	}
	files := map[string]string{abs: string(text)}
	if configs {
		files[filepath.Join(dir, "client.toml")] = fmt.Sprintf("# meshvpn-client for network %q (see meshvpn-client example-config for every key)\ngenesis = %q\n", g.Name, abs)
		files[filepath.Join(dir, "exit-node.toml")] = fmt.Sprintf("# meshvpn-exit-node for network %q (see meshvpn-exit-node example-config for every key)\ngenesis = %q\n#public_address = \"IP:7000\"\n", g.Name, abs)
		files[filepath.Join(dir, "discovery.toml")] = fmt.Sprintf("# meshvpn-discovery for network %q (see meshvpn-discovery example-config for every key)\ngenesis = %q\n", g.Name, abs)
	}
	for path := range files {
		if _, err := os.Stat(path); err == nil {
			return "", fmt.Errorf("%s exists: not replaced", path)
		}
	}
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	return abs, nil
}
