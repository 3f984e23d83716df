// Package exitnode is the meshvpn-exit-node daemon: a relay, and unless relay_only an exit with its
// TUN device, session NAT, exit policy and kernel masquerade, with keys on disk and metrics.
package exitnode

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/publish"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/exit/masq"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/policy"
	"github.com/meshvpn/meshvpn/exit/session"
	"github.com/meshvpn/meshvpn/network/link"
	"github.com/meshvpn/meshvpn/network/natcheck"
	"github.com/meshvpn/meshvpn/network/tun"
)

// EntryFile is the file in the data directory that holds this node's relay list entry. It is written
// once the node is serving, so its appearance also says the node is ready.
const EntryFile = "relay.toml"

// ownRefresh is how often an exit re-reads its host's addresses, which its policy refuses to reach.
const ownRefresh = 15 * time.Second

// Node is a running exit node.
type Node struct {
	cfg     Config
	log     *zap.Logger
	relay   *relay.Relay
	exit    *session.Engine   // nil for a relay-only node
	dns     *exitdns.Resolver // the tunnel resolver; nil for a relay-only node
	policy  *policy.Policy
	masq    *masq.Rules
	metrics *daemon.MetricsServer
	entry   netdir.Relay
	dht     *dht.Node             // nil without a genesis file
	pub     *publish.Publisher    // nil without a genesis file
	nat     *natcheck.Watch       // nil without STUN servers in the genesis file
	reach   atomic.Pointer[reach] // while registered with a rendezvous (nat.go)
	onion   atomic.Pointer[onionState]
	// stack is what Start started, stopped in reverse by Close; its context is the node's, which
	// its goroutines end with.
	stack *daemon.Stack
}

// Keys are a node's long-term keys, kept in its data directory.
type Keys struct {
	Identity *keys.Identity
	Link     *keys.Static
	Onion    *keys.Static
}

// LoadKeys loads the node's keys from dir, generating and saving (0600) any that are missing. A
// missing identity key beside the node's other keys or state is refused (CheckKeys) unless
// newIdentity: a restore that lost it would otherwise make a new relay without a word.
func LoadKeys(dir string, newIdentity bool, log *zap.Logger) (Keys, error) {
	if err := CheckKeys(dir, newIdentity); err != nil {
		return Keys{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("data directory: %w", err)
	}
	var k Keys
	var created [3]bool
	var err error
	if k.Identity, created[0], err = keys.LoadOrCreateIdentity(filepath.Join(dir, "identity.key"), rand.Reader); err != nil {
		return Keys{}, err
	}
	if k.Link, created[1], err = keys.LoadOrCreateStatic(filepath.Join(dir, "link.key"), rand.Reader); err != nil {
		return Keys{}, err
	}
	if k.Onion, created[2], err = keys.LoadOrCreateStatic(filepath.Join(dir, "onion.key"), rand.Reader); err != nil {
		return Keys{}, err
	}
	if created[0] || created[1] || created[2] {
		log.Info("generated new keys", zap.String("dir", dir), zap.Bools("identity,link,onion", created[:]))
	}
	return k, nil
}

// Start brings the node up: its ports, keys, the relay on its UDP socket, and unless relay-only the
// exit (TUN, forwarding, masquerade, sessions). When it returns without error the node is serving and
// its entry is in the data directory.
func Start(cfg Config, log *zap.Logger) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.RelayOnly {
		if err := daemon.NeedNetAdmin("an exit makes a TUN device, turns on forwarding and installs NAT rules", "or run a relay that is no exit with --relay-only"); err != nil {
			return nil, err
		}
	}
	var g *genesis.Genesis
	if cfg.Genesis != "" {
		if g, err = daemon.LoadGenesis(cfg.Genesis); err != nil {
			return nil, err
		}
	}
	// The ports before the keys: a port another program holds fails the start before any key file
	// is made, so a node's identity is made by a start that serves.
	ports, err := bindPorts(cfg)
	if err != nil {
		return nil, err
	}
	defer ports.close() // those not handed over to their owners
	k, err := LoadKeys(cfg.DataDir, cfg.NewIdentity, log)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, stack: daemon.NewStack(context.Background())}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	onion, err := loadOnion(cfg.DataDir, k.Onion, cfg.OnionRotation, time.Now())
	if err != nil {
		return nil, err
	}
	n.onion.Store(onion)
	conn := ports.link
	ports.link = nil
	// The socket's one owner is the link node: the relay (links, whois) and the STUN prober register
	// their handlers on it before it starts reading.
	lc := link.Config{Conn: conn, Static: k.Link, KeepaliveInterval: cfg.Link.KeepaliveInterval, DeadAfter: cfg.Link.DeadAfter, Logger: log.Named("relay")}
	if cfg.NAT.ServeRendezvous {
		lc.Rendezvous = &link.RendezvousConfig{}
	}
	node, err := link.New(lc)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	rc := relay.Config{Node: node, Identity: k.Identity, OnionKeys: onion.keys(), Logger: log.Named("relay")}
	rc.RatchetEvery = cfg.RatchetEvery
	cfg.Limits.apply(&rc)
	if g != nil {
		rc.NetworkID = g.NetworkID // answer the authorities' whois
	}
	if !cfg.RelayOnly {
		if err := n.startExit(g); err != nil {
			node.Close()
			return nil, err
		}
		e := n.exit
		rc.Exit = func(c *relay.ExitCircuit, t cell.MsgType, data []byte) { e.Handle(c, t, data) }
	}
	if n.relay, err = relay.New(rc); err != nil {
		node.Close()
		return nil, err
	}
	n.stack.Closer("relay", n.relay)
	var prober *natcheck.Prober
	if g != nil && len(g.STUN) > 0 {
		prober = natcheck.NewProber(node.WriteTo)
		if err := node.HandleOther(prober.Handle); err != nil {
			return nil, err
		}
	}
	if err := node.Start(); err != nil {
		return nil, err
	}
	n.entry = EntryFor(cfg, k)
	if cfg.PublicAddress == "" {
		n.entry.Addr = n.relay.Info().Addr // the port the kernel chose, if listen asked for any
	}
	if cfg.Metrics != "" {
		if n.metrics, err = daemon.ServeMetricsOn(ports.metrics, log, &collector{n: n}, daemon.LinkMetrics(n.relay.LinkStats)); err != nil {
			return nil, err
		}
		ports.metrics = nil
		n.stack.Closer("metrics", n.metrics)
	}
	if _, err := n.rotateOnion(time.Now()); err != nil { // one that came due while the node was down
		return nil, err
	}
	if err := n.writeEntry(); err != nil {
		return nil, err
	}
	// The entry goes first when the node stops: it no longer serves.
	n.stack.Push("entry", func() error { return os.Remove(filepath.Join(n.cfg.DataDir, EntryFile)) })
	n.stack.Go(n.keepRotating)
	if g != nil && len(g.STUN) > 0 {
		n.nat = &natcheck.Watch{Prober: prober, Servers: g.STUN, Local: func() netip.AddrPort { return n.relay.Info().Addr }, Logger: log.Named("nat")}
		n.stack.Go(n.nat.Run)
	}
	if g != nil {
		dhtConn := ports.dht
		ports.dht = nil
		if err := n.startPublishing(g, k, dhtConn); err != nil {
			return nil, err
		}
	}
	if len(cfg.NAT.Rendezvous) > 0 || n.nat != nil {
		n.stack.Go(func(ctx context.Context) { n.keepRegistered(ctx, g) })
	}
	log.Info("serving", zap.String("name", cfg.Name), zap.Stringer("listen", n.relay.Info().Addr), zap.Bool("exit", n.exit != nil))
	return n, nil
}

// EntryFor returns the relay list entry of a node with this configuration and these keys.
func EntryFor(cfg Config, k Keys) netdir.Relay {
	addr := cfg.PublicAddress
	if addr == "" {
		addr = cfg.Listen
	}
	e := netdir.Relay{Name: cfg.Name, Flags: netdir.Running,
		Identity: k.Identity.Public(), LinkKey: k.Link.Public(), Onion: k.Onion.Public(),
		Addr: netip.MustParseAddrPort(addr),
	}
	if !cfg.RelayOnly {
		e.Flags |= netdir.Exit
		if p, err := policy.New(policy.Config{Rules: cfg.Exit.Policy}); err == nil {
			e.Exit = p.Summary()
			e.IPv6 = cfg.Exit.carriesIPv6(p)
		}
	}
	return e
}

func (n *Node) startExit(g *genesis.Genesis) error {
	e := n.cfg.Exit
	pool := netip.MustParsePrefix(e.Pool).Masked()
	self := pool.Addr().Next()
	p, err := policy.New(policy.Config{Rules: e.Policy, AllowPrivate: e.AllowPrivate, AllowLocal: e.AllowLocal,
		Directory: n.authorityAddrs(g)})
	if err != nil {
		return err
	}
	n.policy = p
	n.refreshOwn()
	tc := tun.Config{Name: e.TUN, MTU: exitMTU, Backend: tun.Backend(e.TUNBackend), Addr: netip.PrefixFrom(self, pool.Bits()), Up: true}
	var pool6 netip.Prefix
	var self6 netip.Addr
	if e.Pool6 != "" {
		pool6 = netip.MustParsePrefix(e.Pool6).Masked()
		self6 = pool6.Addr().Next()
		tc.Addr6 = netip.PrefixFrom(self6, pool6.Bits())
	}
	dev, err := tun.Open(tc)
	if err != nil {
		return fmt.Errorf("exit TUN: %w", err)
	}
	if e.Masquerade {
		if err := masq.EnableForwarding(); err != nil {
			dev.Close()
			return err
		}
		if pool6.IsValid() {
			if err := masq.EnableForwarding6(); err != nil {
				dev.Close()
				return err
			}
		}
		if n.masq, err = masq.Install(pool, e.TUN, masq.Options{Pool6: pool6}); err != nil {
			dev.Close()
			return err
		}
		n.stack.Push("masquerade", n.masq.Remove)
	}
	addrs, err := nat.NewPool(pool, self)
	if err != nil {
		dev.Close()
		return err
	}
	var addrs6 *nat.Pool
	if pool6.IsValid() {
		if addrs6, err = nat.NewPool6(pool6, self6); err != nil {
			dev.Close()
			return err
		}
	}
	servers, _ := e.resolvers() // checked by Validate
	n.dns = exitdns.New(exitdns.Config{Upstream: &exitdns.HostResolver{Servers: servers}, Logger: n.log.Named("dns")})
	if n.exit, err = session.New(session.Config{TUN: dev, Pool: addrs, Self: self, Pool6: addrs6, Self6: self6, Policy: p, Grace: e.Grace, DNS: n.dns, Logger: n.log.Named("exit")}); err != nil {
		n.dns.Close()
		dev.Close()
		return err
	}
	n.stack.Closer("exit", n.exit)
	n.refreshOwn() // the TUN's address is one of ours now
	n.stack.Go(n.watchOwn)
	return nil
}

// authorityAddrs returns where the network's directory authorities serve (the genesis file's URLs,
// names resolved once, now), which the exit carries clients' directory fetches to whatever its policy.
func (n *Node) authorityAddrs(g *genesis.Genesis) []netip.AddrPort {
	if g == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range g.Authorities {
		addrs, err := daemon.ResolveURL(n.stack.Context(), a.URL)
		if err != nil {
			n.log.Warn("a directory authority's address: clients cannot reach it through this exit", zap.String("url", a.URL), zap.Error(err))
			continue
		}
		out = append(out, addrs...)
	}
	return out
}

// refreshOwn tells the policy every address this host has, so that no client reaches the exit's own
// services through it.
func (n *Node) refreshOwn() {
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		n.log.Warn("listing the host's addresses", zap.Error(err))
		return
	}
	own := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			own = append(own, ip.Unmap())
		}
	}
	n.policy.SetOwn(own)
}

func (n *Node) watchOwn(ctx context.Context) {
	t := time.NewTicker(ownRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.refreshOwn()
		}
	}
}

func (n *Node) writeEntry() error {
	text, err := relaylist.Encode([]netdir.Relay{n.Entry()})
	if err != nil {
		return err
	}
	path := filepath.Join(n.cfg.DataDir, EntryFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, text, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// Entry returns the node's relay list entry: while it is registered with a rendezvous, with the
// rendezvous and its NAT's public address.
func (n *Node) Entry() netdir.Relay {
	e := n.entry
	if s := n.onion.Load(); s != nil {
		e.Onion = s.current.Public()
	}
	if r := n.reach.Load(); r != nil {
		e.Rendezvous = []descriptor.Rendezvous{{LinkKey: r.rv.Key, Addr: r.rv.Addr}}
		e.Addr = r.public
	}
	return e
}

// Rendezvous returns the rendezvous the node is registered with, if any.
func (n *Node) Rendezvous() (link.Rendezvous, bool) {
	if r := n.reach.Load(); r != nil {
		return r.rv, true
	}
	return link.Rendezvous{}, false
}

// Relay returns the node's relay engine.
func (n *Node) Relay() *relay.Relay { return n.relay }

// NAT returns the node's last NAT detection (nil without STUN servers, or before the first answer).
func (n *Node) NAT() *natcheck.Report {
	if n.nat == nil {
		return nil
	}
	r, _ := n.nat.Last()
	return r
}

// Exit returns the node's exit engine, or nil for a relay-only node.
func (n *Node) Exit() *session.Engine { return n.exit }

// MetricsAddr returns where metrics are served, or nil when they are off.
func (n *Node) MetricsAddr() net.Addr {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.Addr()
}

// Close stops the node and undoes what it did to the host, in the reverse order of Start: the
// goroutines end, the publisher and the DHT node stop, the entry file goes (the node no longer
// serves), the metrics, the relay (circuits torn down), the exit (its TUN) and the masquerade table.
func (n *Node) Close() error { return n.stack.Close() }
