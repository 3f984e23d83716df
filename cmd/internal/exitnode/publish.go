package exitnode

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/publish"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// Software is what the node's descriptor names as its implementation.
const Software = "meshvpn-exit-node/0.1"

// startPublishing joins the network's DHT on conn (bound at dht_listen) and publishes the node's
// descriptor until Close.
func (n *Node) startPublishing(g *genesis.Genesis, k Keys, conn *net.UDPConn) (err error) {
	if n.dht, err = dht.New(dht.Config{Conn: conn, Bootstrap: g.Bootstrap, NodesFile: filepath.Join(n.cfg.DataDir, "dht-nodes"), Logger: n.log.Named("dht")}); err != nil {
		conn.Close()
		return err
	}
	n.stack.Push("dht", n.dht.Close)
	n.pub, err = publish.Start(publish.Config{
		DHT: n.dht, NetworkID: g.NetworkID, Identity: k.Identity, Port: int(n.entry.Addr.Port()),
		Interval: n.cfg.PublishInterval,
		Descriptor: func(now time.Time, seq uint64) (*descriptor.Descriptor, error) {
			return n.descriptor(g.NetworkID, k, now, seq)
		},
		Reach: func() publish.Reach {
			_, registered := n.Rendezvous()
			switch {
			case registered:
				return publish.ViaRendezvous
			case n.behindNAT():
				return publish.Unreachable
			}
			return publish.Direct
		},
		// Behind a NAT, a node publishes only once it can be reached through a rendezvous: the first
		// publication waits (a little) for NAT detection.
		Settled: func() bool { return n.nat == nil || n.NAT() != nil },
		Logger:  n.log,
	})
	if err != nil {
		return err
	}
	n.stack.Func("publisher", n.pub.Close)
	return nil
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
		Addresses: []netip.AddrPort{n.Entry().Addr},
		Country:   n.cfg.Country, Region: n.cfg.Region,
		Bandwidth: n.cfg.Bandwidth,
		Software:  Software,
		Name:      n.cfg.Name,
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
	slices.SortFunc(d.Family, func(a, b keys.IdentityPublic) int { return bytes.Compare(a[:], b[:]) })
	return d, nil
}
