package testnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// The network's own services on the hub: two meshvpn-dht-bootstrap nodes (DHT 6881, STUN 3478), so
// that NAT detection has two STUN servers to compare.
var bootAddrs = []netip.Addr{netip.MustParseAddr("10.240.0.2"), netip.MustParseAddr("10.240.0.3")}

const (
	bootDHTPort  = 6881
	bootSTUNPort = 3478
	authHTTPPort = 8080
	authDHTPort  = 6881
	nodeDHTPort  = 7001
	// period is the authorities' round on the testnet (10 minutes on a real network).
	period = 1500 * time.Millisecond
)

// Authority is one discovery authority of the testnet: a meshvpn-discovery process.
type Authority struct {
	Name     string
	Addr     netip.Addr
	Identity keys.IdentityPublic
	ns       *namespace
	dir      string
	proc     *process
}

// URL is where the authority serves its directory.
func (a *Authority) URL() string { return fmt.Sprintf("http://%s:%d", a.Addr, authHTTPPort) }

// startBootstrap runs the network's DHT bootstrap nodes (each with its STUN server).
func (n *Net) startBootstrap(ctx context.Context, hub *namespace) error {
	for i, addr := range bootAddrs {
		name := fmt.Sprintf("boot%d", i+1)
		ns, err := n.namespace(name)
		if err != nil {
			return err
		}
		if err := n.plug(ns, hub, "br0", name, netip.PrefixFrom(addr, 24)); err != nil {
			return err
		}
		dir := filepath.Join(n.dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		cfg := fmt.Sprintf(`data_dir = %q
metrics = %q
log_level = "info"
[dht]
listen = "%s:%d"
[stun]
listen = "%s:%d"
`, filepath.Join(dir, "data"), metricsAddr, addr, bootDHTPort, addr, bootSTUNPort)
		path := filepath.Join(dir, "dht-bootstrap.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		p, err := n.run(ns, name, filepath.Join(n.bin, "meshvpn-dht-bootstrap"), "--config", path)
		if err != nil {
			return err
		}
		n.boot = append(n.boot, p)
		if err := p.waitFor(ctx, 15*time.Second, func() bool { return n.metricsUp(ns) }); err != nil {
			return err
		}
	}
	return nil
}

// metricsUp reports whether the process in ns serves its metrics yet (it does once it has started).
func (n *Net) metricsUp(ns *namespace) bool {
	hc := nsHTTPClient(ns, time.Second)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// nsHTTPClient returns an HTTP client whose connections are made inside ns.
func nsHTTPClient(ns *namespace, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.do(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// makeAuthorities creates the authorities' namespaces and keys (meshvpn-discovery info), before the
// genesis file that names them exists.
func (n *Net) makeAuthorities(hub *namespace, count int) error {
	for i := range count {
		a := &Authority{Name: fmt.Sprintf("a%d", i+1), Addr: netip.AddrFrom4([4]byte{10, 240, 0, byte(31 + i)})}
		a.dir = filepath.Join(n.dir, a.Name)
		ns, err := n.namespace(a.Name)
		if err != nil {
			return err
		}
		a.ns = ns
		if err := n.plug(ns, hub, "br0", a.Name, netip.PrefixFrom(a.Addr, 24)); err != nil {
			return err
		}
		out, err := sh(filepath.Join(n.bin, "meshvpn-discovery"), "info", "--data-dir", filepath.Join(a.dir, "data"))
		if err != nil {
			return err
		}
		if a.Identity, err = keys.ParseIdentityPublic(strings.TrimSpace(out)); err != nil {
			return fmt.Errorf("meshvpn-discovery info: %w", err)
		}
		n.Authorities = append(n.Authorities, a)
	}
	return nil
}

// writeGenesis makes the testnet's genesis file: its authorities (a majority must agree), the
// bootstrap nodes and their STUN servers.
func (n *Net) writeGenesis() error {
	g := &genesis.Genesis{Name: "testnet"}
	for _, a := range bootAddrs {
		g.Bootstrap = append(g.Bootstrap, netip.AddrPortFrom(a, bootDHTPort))
		g.STUN = append(g.STUN, netip.AddrPortFrom(a, bootSTUNPort))
	}
	var err error
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		return err
	}
	for _, a := range n.Authorities {
		g.Authorities = append(g.Authorities, genesis.Authority{Identity: a.Identity, URL: a.URL(), Name: a.Name})
	}
	g.Threshold = genesis.MinThreshold(len(g.Authorities))
	text, err := g.Encode()
	if err != nil {
		return err
	}
	n.Genesis, n.GenesisFile = g, filepath.Join(n.dir, "genesis")
	return os.WriteFile(n.GenesisFile, text, 0o644)
}

// startAuthorities runs every authority with the genesis file.
func (n *Net) startAuthorities(ctx context.Context) error {
	for _, a := range n.Authorities {
		cfg := fmt.Sprintf(`genesis = %q
data_dir = %q
period = %q
metrics = %q
log_level = "info"
[dht]
listen = "%s:%d"
[http]
listen = "%s:%d"
[probe]
source = "%s"
burst = 8
keepalive_interval = %q
dead_after = %q
`, n.GenesisFile, filepath.Join(a.dir, "data"), period, metricsAddr, a.Addr, authDHTPort, a.Addr, authHTTPPort, a.Addr, keepalive, deadAfter)
		if !n.firstDay {
			cfg += "[flags]\nstable_age = \"1s\"\n"
		}
		path := filepath.Join(a.dir, "discovery.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		p, err := n.run(a.ns, a.Name, filepath.Join(n.bin, "meshvpn-discovery"), "--config", path)
		if err != nil {
			return err
		}
		a.proc = p
	}
	for _, a := range n.Authorities {
		if err := a.proc.waitFor(ctx, 15*time.Second, func() bool { return n.metricsUp(a.ns) }); err != nil {
			return err
		}
	}
	return nil
}

// awaitConsensus waits until the authorities agree on every relay of the testnet, with the flags a
// client needs (Running; Exit on the exits; Guard on some relays), and returns that consensus,
// fetched from namespace from (which must reach the hub outside any tunnel).
func (n *Net) awaitConsensus(ctx context.Context, from *namespace, limit time.Duration) (*netdir.NetDir, error) {
	f, err := netdir.NewFetcher(n.Genesis, "", nil)
	if err != nil {
		return nil, err
	}
	hc := nsHTTPClient(from, 5*time.Second)
	defer hc.CloseIdleConnections()
	f.SetHTTPClient(hc)
	deadline := time.Now().Add(limit)
	var last string
	for {
		net, err := f.Fetch(ctx, time.Now())
		if err == nil {
			guards, exits, running := 0, 0, 0
			for _, r := range net.Relays() {
				fl := r.Flags
				if fl.Has(netdir.Running) {
					running++
				}
				if fl.Has(netdir.Guard) && !r.IsExit() {
					guards++
				}
				if fl.Has(netdir.Exit) {
					exits++
				}
			}
			if running == len(n.Relays) && exits == len(n.Exits) && guards >= 1 {
				return net, nil
			}
			last = fmt.Sprintf("%d of %d relays running, %d exits, %d guards", running, len(n.Relays), exits, guards)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no full consensus after %v: %s", limit, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
