// Package publish keeps a relay's signed descriptor on the network's DHT, where the discovery
// authorities find it (core/authority): a BEP 44 mutable item keyed by the relay's identity, salt
// descriptor.Salt, seq the descriptor's Seq; and an announce of the relay's link port under the
// network's infohash. Both are renewed every Interval, well within the DHT's two-hour item lifetime
// and descriptor.MaxAge, and at once when the relay's reach changes (Kick).
//
// A relay behind a NAT is announced by nobody (nobody could ask its address who it is): once it is
// registered with a rendezvous its descriptor, which names that rendezvous, is published, and the
// authorities find it in the rendezvous's list of registered relays. Until then nothing is published.
package publish

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

// Reach is how a relay can be reached at the moment of a publication.
type Reach int

const (
	// Unreachable: behind a NAT and not registered with a rendezvous yet. Nothing is published.
	Unreachable Reach = iota
	// Direct: at its own address. The descriptor is published and the link port announced.
	Direct
	// ViaRendezvous: behind a NAT, registered with the rendezvous its descriptor names. The
	// descriptor is published; the relay is not announced.
	ViaRendezvous
)

// Bounds on one publication and on the first one's wait.
const (
	publishTimeout = 30 * time.Second
	// FirstWait bounds how long the first publication waits for Config.Settled.
	FirstWait = 10 * time.Second
)

// Config is what a Publisher publishes, and where.
type Config struct {
	// DHT is the relay's DHT node, bootstrapped from the genesis file's nodes. The caller owns it and
	// closes it after Close.
	DHT       *dht.Node
	NetworkID [32]byte
	Identity  *keys.Identity // signs the descriptor and the BEP 44 item
	Port      int            // the relay's link port, announced under the network's infohash
	Interval  time.Duration  // between publications
	// Descriptor returns the relay's descriptor as of now, with seq, unsigned; Identity is set by
	// signing.
	Descriptor func(now time.Time, seq uint64) (*descriptor.Descriptor, error)
	// Reach reports how the relay can be reached now.
	Reach func() Reach
	// Settled, if set, reports whether the relay knows whether it is behind a NAT (NAT detection has
	// answered): the first publication waits for it, at most FirstWait, so that a relay behind a NAT
	// does not announce an address nobody can reach.
	Settled func() bool
	Logger  *zap.Logger
}

// Publisher keeps a relay's descriptor on the DHT until Close.
type Publisher struct {
	cfg      Config
	seq      uint64 // owned by the publishing goroutine
	ok, fail atomic.Uint64
	kick     chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start publishes the relay's descriptor at once (once Settled, or after FirstWait) and then every
// Interval, until Close.
func Start(cfg Config) (*Publisher, error) {
	switch {
	case cfg.DHT == nil || cfg.Identity == nil || cfg.Descriptor == nil || cfg.Reach == nil:
		return nil, errors.New("publish: want a DHT node, an identity, a descriptor and a reach")
	case cfg.Interval <= 0:
		return nil, fmt.Errorf("publish: interval %v: want a positive duration", cfg.Interval)
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("publish: link port %d", cfg.Port)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	p := &Publisher{cfg: cfg, kick: make(chan struct{}, 1)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(p.run)
	return p, nil
}

// Close stops publishing and waits for a publication in progress to end (it is cut short). What was
// published stays on the DHT until it expires.
func (p *Publisher) Close() {
	p.cancel()
	p.wg.Wait()
}

// Kick has the descriptor published now rather than at the next interval (the relay's reach, keys or
// addresses changed).
func (p *Publisher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stats returns the publications that succeeded and failed since Start.
func (p *Publisher) Stats() (ok, failed uint64) { return p.ok.Load(), p.fail.Load() }

func (p *Publisher) run() {
	for deadline := time.Now().Add(FirstWait); p.cfg.Settled != nil && !p.cfg.Settled() && time.Now().Before(deadline); {
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	wait := time.Duration(0)
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(wait):
		case <-p.kick:
		}
		ctx, cancel := context.WithTimeout(p.ctx, publishTimeout)
		err := p.publish(ctx)
		cancel()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.fail.Add(1)
			p.cfg.Logger.Warn("publishing the descriptor", zap.Error(err))
			wait = min(max(2*wait, time.Second), p.cfg.Interval) // retry sooner than the interval
			continue
		}
		p.ok.Add(1)
		wait = p.cfg.Interval
	}
}

// publish signs a fresh descriptor and puts it, then announces the relay if it is reached directly.
func (p *Publisher) publish(ctx context.Context) error {
	reach := p.cfg.Reach()
	if reach == Unreachable {
		return nil
	}
	if err := p.cfg.DHT.Bootstrap(ctx); err != nil {
		return fmt.Errorf("dht bootstrap: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// The sequence number is the signing time in seconds, so it increases across restarts too; two
	// publications within one second take the next number.
	p.seq = max(p.seq+1, uint64(now.Unix()))
	d, err := p.cfg.Descriptor(now, p.seq)
	if err != nil {
		return err
	}
	raw, err := d.Sign(p.cfg.Identity)
	if err != nil {
		return err
	}
	key := ed25519.NewKeyFromSeed(p.cfg.Identity.Seed())
	if err := p.cfg.DHT.Publish(ctx, key, descriptor.Salt(p.cfg.NetworkID), int64(p.seq), raw); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if reach == Direct {
		if err := p.cfg.DHT.Announce(ctx, dht.NetworkInfohash(p.cfg.NetworkID), p.cfg.Port); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	p.cfg.Logger.Info("descriptor published", zap.Uint64("seq", p.seq))
	return nil
}
