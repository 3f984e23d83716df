package exitnode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/network/link"
	"github.com/meshvpn/meshvpn/network/natcheck"
	"go.uber.org/zap"
)

// A node behind a NAT cannot be reached at its address: nobody's packets get in before it has sent
// to them. It registers with a rendezvous (a public relay) and keeps that registration; its descriptor
// and relay list entry name the rendezvous, through which clients and relays dial it
// (network/link's DialVia), and the authorities find it in the rendezvous's list of registered relays
// (core/whois) rather than by asking its address.

// NATConfig is the [nat] section: see example.toml.
type NATConfig struct {
	ServeRendezvous bool     `toml:"serve_rendezvous"`
	Rendezvous      []string `toml:"rendezvous"`
}

func (c *NATConfig) validate() []error {
	var errs []error
	for _, s := range c.Rendezvous {
		if _, err := relaylist.ParseRendezvous(s); err != nil {
			errs = append(errs, fmt.Errorf("nat.rendezvous: %w", err))
		}
	}
	return errs
}

// reach is how the node is reached while it is registered with a rendezvous.
type reach struct {
	rv     link.Rendezvous
	public netip.AddrPort // the address its NAT maps its socket to, as the rendezvous sees it
}

// Registration timing: how long one try may take, the longest wait between rounds of failed tries,
// and how often a node not known to be behind a NAT looks again.
const (
	registerTimeout  = 10 * time.Second
	registerRetryMax = 5 * time.Second
	registerBackoff  = 30 * time.Second
	// detectionWait is how often the node looks again for a NAT detection result while it has none.
	detectionWait = 500 * time.Millisecond
)

// keepRegistered runs while the node serves: whenever the node is behind a NAT (a rendezvous is
// configured, or NAT detection says so) it registers with a rendezvous, tells the publisher, and
// registers again when that link goes down.
func (n *Node) keepRegistered(ctx context.Context, g *genesis.Genesis) {
	var fetcher *netdir.Fetcher
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		cands, err := n.rendezvousCandidates(ctx, g, &fetcher)
		if err != nil {
			n.log.Info("choosing a rendezvous", zap.Error(err))
		}
		if cands == nil && err == nil {
			wait = detectionWait // not (yet) known to be behind a NAT
			if r := n.NAT(); r != nil {
				wait = registerBackoff
			}
			continue
		}
		registered := false
		for _, rv := range cands {
			if n.registerOnce(ctx, rv) {
				registered = true
				break
			}
		}
		if registered {
			wait = 0
		} else {
			wait = min(max(2*wait, time.Second), registerRetryMax)
		}
	}
}

// registerOnce registers with rv and holds the registration until its link closes or the node stops.
// It reports whether the registration was made.
func (n *Node) registerOnce(ctx context.Context, rv link.Rendezvous) bool {
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	l, err := n.relay.Register(rctx, rv)
	cancel()
	if err != nil {
		n.log.Info("registering with a rendezvous", zap.Stringer("rendezvous", rv.Addr), zap.Error(err))
		return false
	}
	n.reach.Store(&reach{rv: rv, public: n.publicAddr()})
	n.log.Info("reachable through a rendezvous", zap.Stringer("rendezvous", rv.Addr))
	n.reachChanged()
	select {
	case <-l.Done():
		n.log.Info("link to the rendezvous lost: registering again", zap.Stringer("rendezvous", rv.Addr))
	case <-ctx.Done():
	}
	n.reach.Store(nil)
	n.reachChanged()
	return true
}

// behindNAT reports whether the node is behind a NAT: a rendezvous is configured, or NAT detection
// found a mapping.
func (n *Node) behindNAT() bool {
	if len(n.cfg.NAT.Rendezvous) > 0 {
		return true
	}
	r := n.NAT()
	return r != nil && r.Mapping != natcheck.None
}

// publicAddr is where the node's NAT maps its socket: what NAT detection saw, else the configured
// address.
func (n *Node) publicAddr() netip.AddrPort {
	if r := n.NAT(); r != nil && r.Public.IsValid() {
		return r.Public
	}
	return n.entry.Addr
}

// reachChanged rewrites the relay list entry and has the descriptor published again.
func (n *Node) reachChanged() {
	if err := n.writeEntry(); err != nil {
		n.log.Warn("writing the relay list entry", zap.Error(err))
	}
	if n.pub != nil {
		n.pub.Kick()
	}
}

// rendezvousCandidates returns the rendezvous to try, in order: the configured ones, or, behind a NAT
// by NAT detection, public relays of the network's directory in random order. It returns nil and no
// error when the node is not known to be behind a NAT.
func (n *Node) rendezvousCandidates(ctx context.Context, g *genesis.Genesis, fetcher **netdir.Fetcher) ([]link.Rendezvous, error) {
	if len(n.cfg.NAT.Rendezvous) > 0 {
		var out []link.Rendezvous
		for _, s := range n.cfg.NAT.Rendezvous {
			rv, _ := relaylist.ParseRendezvous(s) // checked by Validate
			out = append(out, rv)
		}
		return out, nil
	}
	r := n.NAT()
	if g == nil || r == nil || r.Mapping == natcheck.None {
		return nil, nil
	}
	if *fetcher == nil {
		f, err := netdir.NewFetcher(g, filepath.Join(n.cfg.DataDir, "directory-chain"), n.log.Named("directory"))
		if err != nil {
			return nil, err
		}
		*fetcher = f
	}
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	net, err := (*fetcher).Fetch(ctx, time.Now())
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	self := n.entry.Identity
	var out []link.Rendezvous
	for _, rl := range net.Relays() {
		if rl.Identity == self || len(rl.Rendezvous) > 0 || !rl.Flags.Has(netdir.Running) || rl.Flags.Has(netdir.Degraded) {
			continue
		}
		out = append(out, link.Rendezvous{Key: rl.LinkKey, Addr: rl.Addr})
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) == 0 {
		return nil, fmt.Errorf("the directory lists no public relay to serve as a rendezvous")
	}
	return out, nil
}
