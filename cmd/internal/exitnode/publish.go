package exitnode

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// Software is what the node's descriptor names as its implementation.
const Software = "meshvpn-exit-node/0.1"

// publisher keeps the node's descriptor on the DHT: a BEP 44 item under its identity with the network
// id as salt, and an announce under the network's infohash with its link port, both renewed every
// publish_interval (well within the DHT's two-hour item lifetime and descriptor.MaxAge).
type publisher struct {
	n        *Node
	dht      *dht.Node
	genesis  *genesis.Genesis
	id       *keys.Identity
	k        Keys
	seq      uint64
	ok, fail atomic.Uint64
	kick     chan struct{} // publish now: the node's reach changed
}

func loadGenesis(path string) (*genesis.Genesis, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	g, err := genesis.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// startPublishing joins the network's DHT and publishes the node's descriptor until Close.
func (n *Node) startPublishing(g *genesis.Genesis, k Keys) error {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(n.cfg.DHTListen)))
	if err != nil {
		return fmt.Errorf("dht listen %s: %w", n.cfg.DHTListen, err)
	}
	dn, err := dht.New(dht.Config{Conn: conn, Bootstrap: g.Bootstrap, NodesFile: filepath.Join(n.cfg.DataDir, "dht-nodes"), Logger: n.log.Named("dht")})
	if err != nil {
		conn.Close()
		return err
	}
	p := &publisher{n: n, dht: dn, genesis: g, id: k.Identity, k: k, kick: make(chan struct{}, 1)}
	n.pub = p
	n.wg.Add(1)
	go p.run()
	return nil
}

func (p *publisher) run() {
	defer p.n.wg.Done()
	interval := p.n.cfg.PublishInterval
	// The first publication waits (a little) for NAT detection: a node behind a NAT publishes only
	// once it can be reached through a rendezvous.
	for deadline := time.Now().Add(firstDetectionWait); p.n.nat != nil && p.n.NAT() == nil && time.Now().Before(deadline); {
		select {
		case <-p.n.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	wait := time.Duration(0)
	for {
		select {
		case <-p.n.stop:
			return
		case <-time.After(wait):
		case <-p.kick:
		}
		ctx, cancel := context.WithTimeout(p.n.ctx, 30*time.Second)
		err := p.publish(ctx)
		cancel()
		if err != nil {
			p.fail.Add(1)
			p.n.log.Warn("publishing the descriptor", zap.Error(err))
			wait = min(max(2*wait, time.Second), interval) // retry sooner than the interval
			continue
		}
		p.ok.Add(1)
		wait = interval
	}
}

// firstDetectionWait bounds how long the first publication waits for NAT detection.
const firstDetectionWait = 10 * time.Second

// publish signs a fresh descriptor and puts it, then announces the node. A node behind a NAT that is
// not registered with a rendezvous yet publishes nothing: nobody could reach it.
func (p *publisher) publish(ctx context.Context) error {
	_, registered := p.n.Rendezvous()
	if p.n.behindNAT() && !registered {
		return nil
	}
	if err := p.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("dht bootstrap: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// The sequence number is the signing time in seconds, so it increases across restarts too; two
	// publications within one second take the next number.
	p.seq = max(p.seq+1, uint64(now.Unix()))
	d, err := p.n.descriptor(p.genesis.NetworkID, p.k, now, p.seq)
	if err != nil {
		return err
	}
	raw, err := d.Sign(p.id)
	if err != nil {
		return err
	}
	key := ed25519.NewKeyFromSeed(p.id.Seed())
	if err := p.dht.Publish(ctx, key, p.genesis.NetworkID[:], int64(p.seq), raw); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	// A node behind a NAT is not announced: nobody could ask its address who it is. The authorities
	// find it in its rendezvous's list of registered relays.
	if !registered {
		port := int(p.n.entry.Info.Addr.Port())
		if err := p.dht.Announce(ctx, dht.NetworkInfohash(p.genesis.NetworkID), port); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	p.n.log.Info("descriptor published", zap.Uint64("seq", p.seq))
	return nil
}

// kickNow has the descriptor published now rather than at the next interval (the node's reach changed).
func (p *publisher) kickNow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// descriptor returns the node's descriptor as of now.
func (n *Node) descriptor(network [32]byte, k Keys, now time.Time, seq uint64) (*descriptor.Descriptor, error) {
	onion := n.onion.Load()
	from, until := onion.window(n.cfg.OnionRotation)
	d := &descriptor.Descriptor{
		NetworkID: network,
		OnionKey:  onion.current.Public(),
		ValidFrom: from, ValidUntil: until,
		LinkKey:   k.Link.Public(),
		Addresses: []netip.AddrPort{n.Entry().Info.Addr},
		Country:   n.cfg.Country, Region: n.cfg.Region,
		Bandwidth: n.cfg.Bandwidth,
		Software:  Software,
		Published: now,
		Seq:       seq,
	}
	if rv, ok := n.Rendezvous(); ok {
		d.Rendezvous = []descriptor.Rendezvous{{LinkKey: rv.Key, Addr: rv.Addr}}
	}
	if n.exit != nil {
		d.Exit = n.policy.Summary()
		d.IPv6 = n.cfg.Exit.carriesIPv6(n.policy)
	}
	for _, f := range n.cfg.Family {
		id, err := keys.ParseIdentityPublic(f)
		if err != nil {
			return nil, fmt.Errorf("family: %w", err)
		}
		d.Family = append(d.Family, id)
	}
	sortIDs(d.Family)
	return d, nil
}

func sortIDs(ids []keys.IdentityPublic) {
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if string(ids[j][:]) < string(ids[i][:]) {
				ids[i], ids[j] = ids[j], ids[i]
			}
		}
	}
}
