// Package dhtboot is the meshvpn-dht-bootstrap daemon: a long-lived DHT node that other nodes start
// from, whose routing table survives restarts in its data directory, and a STUN server beside it for
// NAT detection, with metrics.
package dhtboot

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/dht"
	"github.com/meshvpn/meshvpn/network/stun"
)

// Bootstrapping is bounded at start, and retried in the background if it fails (a node that never
// bootstrapped is never maintained). A node with nobody to reach is not a failure: it is a first node.
const (
	bootstrapTimeout  = 30 * time.Second
	retryFirst        = 10 * time.Second
	retryMax          = 5 * time.Minute
	retryBackoffRatio = 2
)

// Node is a running bootstrap node.
type Node struct {
	cfg     Config
	set     settings
	log     *zap.Logger
	dht     *dht.Node
	stun    *stun.Server // nil when STUN is off
	metrics *daemon.MetricsServer
	stack   *daemon.Stack // what Start started, stopped in reverse by Close
}

// Start brings the node up: the STUN server, the DHT node with the routing table saved in the data
// directory, a first bootstrap from the configured nodes and the saved ones, and metrics. When it
// returns without error both servers answer on Addresses.
func Start(cfg Config, log *zap.Logger) (_ *Node, err error) {
	set, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	n := &Node{cfg: cfg, set: set, log: log, stack: daemon.NewStack(context.Background())}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if set.stunListen.IsValid() {
		conn, err := listenUDP(set.stunListen)
		if err != nil {
			return nil, fmt.Errorf("stun.listen: %w", err)
		}
		n.stun = stun.Serve(conn, cfg.STUN.Rate, log.Named("stun"))
		n.stack.Closer("stun", n.stun)
	}
	conn, err := listenUDP(set.dhtListen)
	if err != nil {
		return nil, fmt.Errorf("dht.listen: %w", err)
	}
	if len(set.bootstrap) == 0 {
		log.Info("no bootstrap nodes configured: this is the network's first node")
	}
	n.dht, err = dht.New(dht.Config{
		Conn:      conn,
		Bootstrap: set.bootstrap,
		// A bootstrap node serves even when none of the others is up yet: they, and every joiner,
		// reach it, and it learns of them then.
		First:     true,
		PublicIP:  set.publicIP,
		NodesFile: filepath.Join(cfg.DataDir, NodesFile),
		Logger:    log.Named("dht"),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	n.stack.Push("dht", n.closeDHT)
	if err := n.bootstrap(n.stack.Context()); err != nil {
		log.Warn("dht bootstrap failed; retrying in the background", zap.Error(err))
		n.stack.Go(n.retryBootstrap)
	}
	if cfg.Metrics != "" {
		if n.metrics, err = daemon.ServeMetrics(cfg.Metrics, cfg.MetricsPublic, log, &collector{n: n}); err != nil {
			return nil, err
		}
		n.stack.Closer("metrics", n.metrics)
	}
	a := n.Addresses()
	st := n.dht.Stats()
	log.Info("serving", zap.Stringer("dht", a.DHT), zap.Stringer("stun", a.STUN),
		zap.Int("known nodes", st.Nodes), zap.Int("good nodes", st.GoodNodes))
	return n, nil
}

// listenUDP binds a socket of ap's address family only, so that 0.0.0.0 means IPv4 and [::] IPv6.
func listenUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	network := "udp6"
	if ap.Addr().Is4() {
		network = "udp4"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
}

func (n *Node) bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	return n.dht.Bootstrap(ctx)
}

// retryBootstrap bootstraps again, less and less often, until it works or ctx (the node's) ends.
func (n *Node) retryBootstrap(ctx context.Context) {
	wait := retryFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := n.bootstrap(ctx)
		if err == nil {
			n.log.Info("dht bootstrapped", zap.Int("known nodes", n.dht.Stats().Nodes))
			return
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("dht bootstrap failed", zap.Error(err), zap.Duration("next try in", wait))
		wait = min(wait*retryBackoffRatio, retryMax)
	}
}

// Addresses returns where the node's servers listen, with public_ip for a wildcard host: the
// addresses for the network's genesis file. The ports are the bound ones, also when the
// configuration asked the kernel to choose.
func (n *Node) Addresses() Addresses {
	a := Addresses{DHT: advertised(n.dht.Addr(), n.set.publicIP)}
	if n.stun != nil {
		ap := n.stun.Addr()
		a.STUN = advertised(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), n.set.publicIP)
	}
	return a
}

// DHT returns the node's DHT node.
func (n *Node) DHT() *dht.Node { return n.dht }

// STUN returns the node's STUN server, or nil when STUN is off.
func (n *Node) STUN() *stun.Server { return n.stun }

// MetricsAddr returns where metrics are served, or nil when they are off.
func (n *Node) MetricsAddr() net.Addr {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.Addr()
}

// Close stops the node. The DHT node writes its routing table to the data directory as it closes,
// so that the next start knows the network without anyone joining again.
func (n *Node) Close() error { return n.stack.Close() }

// closeDHT closes the DHT node, which saves its routing table, and says what it saved.
func (n *Node) closeDHT() error {
	nodes := n.dht.Stats().Nodes
	if err := n.dht.Close(); err != nil {
		return err
	}
	if nodes == 0 {
		n.log.Info("routing table empty: the nodes file is left as it was")
	} else {
		n.log.Info("routing table saved", zap.Int("nodes", nodes))
	}
	return nil
}
