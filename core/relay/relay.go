package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/relay/internal/hook"
	"github.com/meshvpn/meshvpn/core/sched"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/link"
)

// Config configures a relay. Zero durations and sizes take the defaults.
type Config struct {
	// Node is the relay's link node, made by link.New and not started: New sets its link handlers
	// (link.Node.SetHandlers) and, with NetworkID, registers the whois handler on its socket
	// (link.Node.HandleOther). Its owner registers whatever else shares the socket (a STUN prober) and
	// then starts it (link.Node.Start), so that every handler is in place before the first datagram is
	// read. Its link key, timers and rendezvous service (link.Config) are the relay's. The relay owns
	// it from New on and closes it on Close; if New fails, the caller still owns it.
	Node      Transport
	Identity  *keys.Identity
	OnionKeys []*keys.Static // current first, then the previous one during a rotation
	Sizes     onion.Sizes    // cell size classes (default onion.DefaultSizes)
	Prefer    []onion.Suite  // suite preference (default onion.RelayPreference())

	// Exit, if set, makes this relay an exit: DATA and BEGIN reaching it as the last hop are handed over
	// here, synchronously on the reading goroutine (data is valid only during the call, and the exit may
	// modify it in place).
	Exit func(c *ExitCircuit, t cell.MsgType, data []byte)

	// NetworkID, if set, makes the relay answer whois requests (core/whois) on its socket with this
	// network id and its identity, so that discovery authorities that found its address on the DHT
	// learn which descriptor to fetch. When its node is a rendezvous (link.Config.Rendezvous), its
	// whois also answers which relays are registered with it (core/whois), for the authorities.
	NetworkID [32]byte

	MaxCircuits   int           // default 200,000
	IdleTimeout   time.Duration // a circuit that carries nothing this long is destroyed (default 5 min)
	ExtendTimeout time.Duration // how long an EXTEND may take (default 5 s)
	QueueCells    int           // per-circuit queue on each outgoing link (default 1024, sched.DefaultQueueCells)
	CreateQueue   int           // CREATEs waiting for a handshake worker; beyond it they are refused (default 1024)

	// RatchetEvery is the layer-key ratchet's period: a circuit's backward key that has sealed
	// something is replaced by its next generation once it is this old (default 1 hour,
	// onion.DefaultRatchetEvery; design: keys replaced after 1 hour or 1 GB).
	RatchetEvery time.Duration

	// MaxQueueMemory bounds the bytes of cells queued at the relay, over all links and circuits (each
	// queued cell counts as one full buffer, pool.Size bytes). A cell past it is dropped, and the
	// circuits whose oldest queued cell has waited longest are destroyed until the queues are down to
	// three quarters of it (Tor's out-of-memory handler). Default 256 MiB.
	MaxQueueMemory int64
	// MaxCircuitsPerLink bounds the circuits one neighbour may have open through this relay (those it
	// opened with CREATE); past it its CREATEs are refused. Default 25,000 (an eighth of MaxCircuits'
	// default), so that no one link fills the circuit table.
	MaxCircuitsPerLink int
	// CreateRate and CreateBurst bound how fast one neighbour may open circuits: a token bucket of
	// CreateBurst CREATEs refilled at CreateRate per second; a CREATE beyond it is refused before it
	// reaches a handshake worker, so one peer's flood does not fill the handshake queue that every
	// peer shares. Defaults 50 per second and 100.
	CreateRate  float64
	CreateBurst int

	Logger *zap.Logger
	Rand   io.Reader // default crypto/rand
}

// Transport is what a relay needs of its link node; *link.Node is one (the relay's socket, its links
// and its rendezvous service). Tests of the relay's own logic give it one without a socket.
type Transport interface {
	SetHandlers(h link.Handlers) error
	HandleOther(h func(pkt []byte, from netip.AddrPort) bool) error
	Public() keys.StaticPublic
	LocalAddr() netip.AddrPort
	Dial(ctx context.Context, addr netip.AddrPort, peer keys.StaticPublic) (*link.Link, error)
	DialVia(ctx context.Context, peer keys.StaticPublic, rv link.Rendezvous) (*link.Link, error)
	Register(ctx context.Context, rv link.Rendezvous, tag []byte) (*link.Link, error)
	Registered() []link.Registered
	Paths() [3]int
	Stats() link.Stats
	WriteTo(pkt []byte, to netip.AddrPort) error
	Close() error
}

var _ Transport = (*link.Node)(nil)

func (c *Config) setDefaults() {
	if c.Sizes == nil {
		c.Sizes = onion.DefaultSizes
	}
	if c.Prefer == nil {
		c.Prefer = onion.RelayPreference()
	}
	if c.MaxCircuits == 0 {
		c.MaxCircuits = 200_000
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.RatchetEvery == 0 {
		c.RatchetEvery = onion.DefaultRatchetEvery
	}
	if c.ExtendTimeout == 0 {
		c.ExtendTimeout = 5 * time.Second
	}
	if c.QueueCells == 0 {
		c.QueueCells = sched.DefaultQueueCells
	}
	if c.CreateQueue == 0 {
		c.CreateQueue = 1024
	}
	if c.MaxQueueMemory == 0 {
		c.MaxQueueMemory = DefaultMaxQueueMemory
	}
	if c.MaxCircuitsPerLink == 0 {
		c.MaxCircuitsPerLink = DefaultMaxCircuitsPerLink
	}
	if c.CreateRate == 0 {
		c.CreateRate = DefaultCreateRate
	}
	if c.CreateBurst == 0 {
		c.CreateBurst = DefaultCreateBurst
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Node == nil {
		errs = append(errs, errors.New("relay: no link node"))
	}
	if c.Identity == nil {
		errs = append(errs, errors.New("relay: no identity key"))
	}
	if len(c.OnionKeys) == 0 {
		errs = append(errs, errors.New("relay: no onion key"))
	}
	if c.Sizes != nil {
		if err := c.Sizes.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("relay: %w", err))
		}
	}
	if c.RatchetEvery < 0 {
		errs = append(errs, errors.New("relay: negative ratchet period"))
	}
	if c.MaxCircuits < 0 || c.QueueCells < 0 || c.CreateQueue < 0 || c.MaxCircuitsPerLink < 0 || c.CreateBurst < 0 {
		errs = append(errs, errors.New("relay: negative limit"))
	}
	if c.MaxQueueMemory < 0 || (c.MaxQueueMemory > 0 && c.MaxQueueMemory < 64*pool.Size) {
		errs = append(errs, fmt.Errorf("relay: MaxQueueMemory is %d bytes, want at least %d (64 cells) or 0 for the default", c.MaxQueueMemory, 64*pool.Size))
	}
	if c.CreateRate < 0 {
		errs = append(errs, fmt.Errorf("relay: CreateRate is %v, want > 0 or 0 for the default", c.CreateRate))
	}
	return errors.Join(errs...)
}

// Defaults of the relay's bounds on what its neighbours can make it hold (see Config).
const (
	DefaultMaxQueueMemory     = 256 << 20
	DefaultMaxCircuitsPerLink = 25_000
	DefaultCreateRate         = 50
	DefaultCreateBurst        = 100
)

// Relay is a running relay engine.
type Relay struct {
	cfg Config

	whoisMu                 sync.Mutex
	whoisSecond, whoisCount int64
	node                    Transport
	server                  atomic.Pointer[ntor.Server] // swapped whole by SetOnionKeys
	linkID                  keys.StaticPublic
	tab                     *table
	stats                   counters
	seq                     atomic.Uint64
	tamper                  atomic.Pointer[hook.Tamper] // tests only (core/relay/relaytest)
	now                     func() time.Time            // time.Now; tests replace it

	creates chan createJob

	mu    sync.Mutex
	links map[Link]*neighbour

	open       atomic.Int64 // circuits opened by CREATE and not destroyed (tab.len counts them slowly)
	queued     atomic.Int64 // cells queued on links (memory.go)
	maxQueued  int64        // MaxQueueMemory in cells
	reclaimNow chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type createJob struct {
	l    Link
	id   cell.ID
	body [cell.CreateLen]byte
}

// New makes a relay on cfg.Node, which its owner then starts (link.Node.Start).
func New(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg:        cfg,
		node:       cfg.Node,
		linkID:     cfg.Node.Public(),
		tab:        newTable(),
		now:        time.Now,
		creates:    make(chan createJob, cfg.CreateQueue),
		links:      make(map[Link]*neighbour),
		maxQueued:  cfg.MaxQueueMemory / pool.Size,
		reclaimNow: make(chan struct{}, 1),
		ctx:        ctx,
		cancel:     cancel,
	}
	r.server.Store(&ntor.Server{ID: cfg.Identity.Public(), OnionKeys: slices.Clone(cfg.OnionKeys), Prefer: cfg.Prefer})
	err := r.node.SetHandlers(link.Handlers{
		OnMessage:  func(l *link.Link, msg []byte) { r.onMessage(l, msg) },
		OnLinkDown: func(l *link.Link, err error) { r.onLinkDown(l, err) },
	})
	if err == nil && cfg.NetworkID != ([32]byte{}) {
		err = r.node.HandleOther(r.onWhois)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay: %w", err)
	}
	// Handshakes run on their own workers so that a CREATE flood queues there, not in front of data.
	workers := max(1, runtime.GOMAXPROCS(0)/2)
	for range workers {
		r.wg.Add(1)
		go r.createWorker()
	}
	r.wg.Add(2)
	go r.janitor()
	go r.reclaimer()
	r.wg.Add(1)
	go r.ratchetLoop()
	return r, nil
}

// SetOnionKeys replaces the onion keys circuit handshakes are answered with: the current one first,
// then the previous one while clients with an older descriptor may still use it (a rotation). A
// handshake under a key no longer in the list fails as one under a wrong key does. Handshakes under
// way finish with the keys they started with.
func (r *Relay) SetOnionKeys(onion []*keys.Static) error {
	if len(onion) == 0 || slices.Contains(onion, nil) {
		return errors.New("relay: no onion key")
	}
	old := r.server.Load()
	r.server.Store(&ntor.Server{ID: old.ID, OnionKeys: slices.Clone(onion), Prefer: old.Prefer})
	return nil
}

// Register makes the relay reachable through rv, for a relay behind a NAT (link.Node.Register): it
// returns once rv confirmed, and the registration lasts as long as the returned link. The tag rv keeps
// is the relay's identity key, which rv lists to the discovery authorities.
func (r *Relay) Register(ctx context.Context, rv link.Rendezvous) (*link.Link, error) {
	id := r.cfg.Identity.Public()
	return r.node.Register(ctx, rv, id[:])
}

// Paths counts the relay's live links by how their packets travel, indexed by link.PathKind.
func (r *Relay) Paths() [3]int { return r.node.Paths() }

// LinkStats returns a snapshot of the counters of the relay's link layer: its socket's datagrams,
// handshakes, and the drops by reason of what arrived spoiled, replayed, unknown or not a link packet.
func (r *Relay) LinkStats() link.Stats { return r.node.Stats() }

// Info returns the relay as a client knows it: its public keys and address.
func (r *Relay) Info() netdir.Relay {
	return netdir.Relay{Identity: r.cfg.Identity.Public(), Onion: r.server.Load().OnionKeys[0].Public(), LinkKey: r.linkID, Addr: r.node.LocalAddr()}
}

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() Stats {
	s := r.stats.snapshot()
	s.CircuitsOpen = int(r.open.Load())
	s.DropOther = r.node.Stats().DropOther
	return s
}

// Close destroys every circuit, stops the relay's goroutines and closes its socket.
func (r *Relay) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.tab.each(func(c *circuit) { r.destroy(c, cell.ReasonNone, nil) })
	r.cancel()
	err := r.node.Close()
	r.wg.Wait()
	r.mu.Lock()
	for l, n := range r.links {
		n.sched.Close()
		delete(r.links, l)
	}
	r.mu.Unlock()
	return err
}

// onMessage is called by the link layer for every authenticated link message.
func (r *Relay) onMessage(l Link, msg []byte) {
	r.stats.cellsIn.Add(1)
	h, body, err := cell.Parse(msg, r.cfg.Sizes)
	if err != nil {
		r.stats.malformed.Add(1)
		return
	}
	switch h.Command {
	case cell.Relay:
		r.onRelay(l, h.Circuit, body)
	case cell.Create:
		r.onCreate(l, h.Circuit, body)
	case cell.Created:
		r.onCreated(l, h.Circuit, body)
	case cell.Destroy:
		r.onDestroy(l, h.Circuit, body)
	case cell.Padding:
	}
}

// onLinkDown tears down every circuit that used the dead link.
func (r *Relay) onLinkDown(l Link, err error) {
	r.tab.each(func(c *circuit) {
		if c.uses(l) {
			r.destroy(c, cell.ReasonLinkDown, l)
		}
	})
	r.mu.Lock()
	n := r.links[l]
	delete(r.links, l)
	r.mu.Unlock()
	if n != nil {
		n.sched.Close()
	}
}

// enqueue queues a cell (a pooled buffer, header included) for circuit c on link l.
func (r *Relay) enqueue(l Link, c *circuit, b []byte) {
	if t := r.tamper.Load(); t != nil {
		r.enqueueTampered(*t, l, c, b)
		return
	}
	r.enqueueOne(l, c, b)
}

// sendControl sends a small control cell (CREATED, DESTROY) on l at once.
func (r *Relay) sendControl(l Link, id cell.ID, cmd cell.Command, fill func(body []byte)) {
	b := pool.Get()
	defer pool.Put(b)
	msg := b[:cell.HeaderLen+r.cfg.Sizes[0]]
	cell.PutHeader(msg, cell.Header{Circuit: id, Command: cmd})
	fill(msg[cell.HeaderLen:])
	if l.Send(msg) == nil {
		r.stats.cellsOut.Add(1)
	}
}

func (r *Relay) janitor() {
	defer r.wg.Done()
	t := time.NewTicker(max(r.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			cutoff := time.Now().Add(-r.cfg.IdleTimeout).UnixNano()
			r.tab.each(func(c *circuit) {
				if c.lastActive.Load() < cutoff {
					r.destroy(c, cell.ReasonIdle, nil)
				}
			})
		}
	}
}
