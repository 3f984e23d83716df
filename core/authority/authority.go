package authority

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
	"github.com/meshvpn/meshvpn/network/link"
)

// NodesFile is the DHT node's routing table in the data directory, besides DBFile.
const NodesFile = "dht-nodes"

// Bounds on work done outside a round's crawl and probes.
const (
	bootstrapTimeout = 30 * time.Second
	publishTimeout   = 30 * time.Second
)

// ErrNotAuthority is returned by Start when the identity is not one of the genesis's authorities.
var ErrNotAuthority = errors.New("not an authority of network")

// Authority is a running discovery authority.
type Authority struct {
	cfg       Config
	validity  time.Duration
	log       *zap.Logger
	id        *keys.Identity
	gen       *genesis.Genesis
	networkID [32]byte
	infohash  dht.Infohash
	prefix    string // the path of this authority's URL, without a trailing slash

	db     *store
	dht    *dht.Node
	whois  *whoisAsker
	prober *prober
	client *client.Client
	http   *httpServer

	// What a round calls for its crawl (DHT bootstrap included), each probe, and the pointer's
	// publication: the methods below, or a test's fakes.
	crawlFn   func(ctx context.Context, now time.Time) crawlResult
	probeFn   func(ctx context.Context, r netdir.Relay, answered func()) (Probe, error)
	pointerFn func(ctx context.Context, p *published) error

	// Owned by the round goroutine (and Start, before it runs).
	relays     map[keys.IdentityPublic]*relayState
	crawling   bool      // a crawl runs; its result comes on crawlDone
	crawlStart time.Time // when it started
	lastCrawl  crawlResult

	// Between the rounds and what runs apart from them (made by startRounds).
	crawlDone  chan crawlResult // capacity 1: one crawl runs at a time
	probes     probeBoard
	probeSlots chan struct{}   // probe.concurrency of them
	pointers   chan *published // capacity 1: the newest document whose pointer is not yet published

	bootstrapped bool               // owned by the crawl that runs
	tracker      descriptor.Tracker // safe for concurrent use: the crawl accepts, the round forgets

	latest atomic.Pointer[published]
	stats  counters

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start brings the authority up: database, DHT node, whois socket and probe client, the HTTP server
// with the latest stored document, and the rounds, the first at once. When it returns without error
// the directory is served.
func Start(cfg Config, log *zap.Logger) (_ *Authority, err error) {
	if cfg.Genesis == nil || cfg.Identity == nil {
		return nil, errors.New("authority: want the network's genesis and the authority's identity")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g, id := cfg.Genesis, cfg.Identity
	i := slices.IndexFunc(g.Authorities, func(a genesis.Authority) bool { return a.Identity == id.Public() })
	if i < 0 {
		return nil, fmt.Errorf("this authority's identity %s is %w %q", id.Public(), ErrNotAuthority, g.Name)
	}
	prefix, err := urlPrefix(g.Authorities[i].URL)
	if err != nil {
		return nil, err
	}
	a := &Authority{
		cfg: cfg, validity: cfg.validity(), log: log, id: id, gen: g, networkID: g.NetworkID,
		infohash: dht.NetworkInfohash(g.NetworkID), prefix: prefix,
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if a.db, err = openStore(filepath.Join(cfg.DataDir, DBFile)); err != nil {
		return nil, err
	}
	st, err := a.db.load()
	if err != nil {
		return nil, err
	}
	if st.broken > 0 {
		log.Warn("dropped relay records that could not be decoded", zap.Int("records", st.broken))
	}
	a.relays = st.relays
	for _, r := range a.relays {
		// The seqs accepted before the restart are still the floor.
		_ = a.tracker.Accept(r.desc)
	}
	if st.latest != nil {
		if st.latest.doc.Authority != id.Public() || st.latest.doc.NetworkID != g.NetworkID {
			return nil, fmt.Errorf("the database in %s holds the directory of another authority or network", cfg.DataDir)
		}
		a.latest.Store(st.latest)
	}
	if err := a.startNetwork(); err != nil {
		return nil, err
	}
	var ln net.Listener
	if p := cfg.Ports; p != nil && p.HTTP != nil {
		ln, p.HTTP = p.HTTP, nil
	}
	if a.http, err = serveHTTP(cfg.HTTPListen, ln, a, log); err != nil {
		return nil, err
	}
	serial := uint64(0)
	if p := a.latest.Load(); p != nil {
		serial = p.doc.Serial
	}
	log.Info("serving", zap.Stringer("identity", id.Public()), zap.String("network", g.Name),
		zap.Stringer("http", a.http.addr()), zap.Stringer("dht", a.dht.Addr()),
		zap.Int("relays known", len(a.relays)), zap.Uint64("serial", serial))
	a.crawlFn, a.probeFn, a.pointerFn = a.crawlDHT, a.prober.probe, a.putPointer
	a.startRounds()
	return a, nil
}

// startRounds starts the rounds and the pointer's publisher.
func (a *Authority) startRounds() {
	a.crawlDone = make(chan crawlResult, 1)
	a.probes = probeBoard{slots: make(map[keys.IdentityPublic]*probeSlot), changed: make(chan struct{}, 1)}
	a.probeSlots = make(chan struct{}, a.cfg.Probe.Concurrency)
	a.pointers = make(chan *published, 1)
	a.wg.Go(a.run)
	a.wg.Go(a.publishPointers)
}

// startNetwork opens the DHT node, the whois socket and the probe client.
func (a *Authority) startNetwork() error {
	var conn *net.UDPConn
	var err error
	if p := a.cfg.Ports; p != nil && p.DHT != nil {
		conn, p.DHT = p.DHT, nil
	} else if conn, err = listenUDP(a.cfg.DHTListen); err != nil {
		return fmt.Errorf("dht.listen: %w", err)
	}
	// This host may be one of the network's bootstrap nodes; it does not start from itself.
	own := []netip.AddrPort{a.cfg.DHTListen}
	if a.cfg.PublicIP.IsValid() {
		own = append(own, netip.AddrPortFrom(a.cfg.PublicIP, a.cfg.DHTListen.Port()))
	}
	boot := slices.DeleteFunc(slices.Clone(a.gen.Bootstrap), func(ap netip.AddrPort) bool { return slices.Contains(own, ap) })
	dc := dht.Config{
		Conn: conn, Bootstrap: boot, First: len(boot) == 0, PublicIP: a.cfg.PublicIP,
		NodesFile: filepath.Join(a.cfg.DataDir, NodesFile), Logger: a.log.Named("dht"),
	}
	if a.cfg.dhtTuning != nil {
		a.cfg.dhtTuning(&dc)
	}
	if a.dht, err = dht.New(dc); err != nil {
		conn.Close()
		return err
	}
	wc, err := listenSource(a.cfg.Probe.Source)
	if err != nil {
		return fmt.Errorf("probe.source: %w", err)
	}
	a.whois = newWhoisAsker(wc)
	pc, err := listenSource(a.cfg.Probe.Source)
	if err != nil {
		return fmt.Errorf("probe.source: %w", err)
	}
	node, err := client.NewNode(pc, link.Config{KeepaliveInterval: a.cfg.Probe.KeepaliveInterval, DeadAfter: a.cfg.Probe.DeadAfter, Logger: a.log.Named("probe")})
	if err != nil {
		pc.Close()
		return err
	}
	if a.client, err = client.New(client.Config{Node: node, StepTimeout: a.cfg.Probe.Timeout / probeTries, Retries: probeTries - 1, Logger: a.log.Named("probe")}); err != nil {
		node.Close()
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	a.prober = &prober{c: a.client, timeout: a.cfg.Probe.Timeout, burst: a.cfg.Probe.Burst, burstSize: a.cfg.Probe.BurstSize}
	return nil
}

// Close stops the rounds (one in progress is cut short and not published) and everything else.
func (a *Authority) Close() error {
	var errs []error
	a.once.Do(func() {
		a.cancel()
		a.wg.Wait()
		if a.http != nil {
			errs = append(errs, a.http.close())
		}
		if a.client != nil {
			errs = append(errs, a.client.Close())
		}
		if a.whois != nil {
			errs = append(errs, a.whois.Close())
		}
		if a.dht != nil {
			errs = append(errs, a.dht.Close())
		}
		if a.db != nil {
			errs = append(errs, a.db.Close())
		}
	})
	return errors.Join(errs...)
}

// Identity returns the authority's identity.
func (a *Authority) Identity() keys.IdentityPublic { return a.id.Public() }

// HTTPAddr returns where the directory is served.
func (a *Authority) HTTPAddr() net.Addr { return a.http.addr() }

// DHTAddr returns the address of the authority's DHT node.
func (a *Authority) DHTAddr() netip.AddrPort { return a.dht.Addr() }

// ProbeLinkStats returns the counters of the probe client's links.
func (a *Authority) ProbeLinkStats() link.Stats { return a.client.LinkStats() }

// Latest returns the latest document (nil before the first) and its encoding.
func (a *Authority) Latest() (*directory.Directory, []byte) {
	p := a.latest.Load()
	if p == nil {
		return nil, nil
	}
	return p.doc, p.raw
}

// forgetOld removes the relays not accepted for forgetAfter, and returns them.
func (a *Authority) forgetOld(now time.Time) []keys.IdentityPublic {
	var gone []keys.IdentityPublic
	for id, r := range a.relays {
		if now.Sub(r.LastSeen) > forgetAfter {
			gone = append(gone, id)
			delete(a.relays, id)
			a.tracker.Forget(id)
		}
	}
	return gone
}

// sign makes the next document from the relays' state at now.
func (a *Authority) sign(now time.Time) (*published, error) {
	// Whole seconds: valid from the second it is signed in, for at least validity from now.
	after := time.Unix(now.Unix(), 0)
	until := time.Unix(now.Add(a.validity).Add(time.Second-1).Unix(), 0)
	if longest := after.Add(directory.MaxValidity); until.After(longest) {
		until = longest
	}
	now = after
	views := make([]*RelayState, 0, len(a.relays))
	byID := make(map[keys.IdentityPublic]*relayState, len(a.relays))
	for id, r := range a.relays {
		views = append(views, r.view(now, a.networkID))
		byID[id] = r
	}
	doc := &directory.Directory{
		NetworkID: a.networkID, Serial: 1,
		ValidAfter: after, ValidUntil: until,
		Entries: a.cfg.Rules.Evaluate(views, now),
	}
	if last := a.latest.Load(); last != nil {
		doc.Serial, doc.Previous = last.doc.Serial+1, last.hash
	}
	descs := make([][]byte, len(doc.Entries))
	for i, e := range doc.Entries {
		descs[i] = byID[e.Identity].Descriptor
	}
	raw, err := doc.Sign(a.id)
	if err != nil {
		return nil, err
	}
	bundle, err := directory.EncodeBundle(descs)
	if err != nil {
		return nil, err
	}
	return newPublished(raw, bundle)
}

// queuePointer hands p to the pointer's publisher, in place of any document still waiting there.
func (a *Authority) queuePointer(p *published) {
	select {
	case <-a.pointers:
	default:
	}
	a.pointers <- p // the round is the only sender, and the channel is empty now
}

// publishPointers publishes the pointer of each document queued, apart from the rounds: a DHT that
// is slow to take it delays no document.
func (a *Authority) publishPointers() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case p := <-a.pointers:
			a.publishPointer(p)
		}
	}
}

// publishPointer puts the pointer to p on the DHT. A failure is logged: the next round tries again.
func (a *Authority) publishPointer(p *published) {
	ctx, cancel := context.WithTimeout(a.ctx, min(publishTimeout, a.cfg.Period))
	defer cancel()
	if err := a.pointerFn(ctx, p); err != nil {
		a.stats.pointerFailed.Add(1)
		if a.ctx.Err() == nil {
			a.log.Warn("publishing the directory pointer on the DHT", zap.Uint64("serial", p.doc.Serial), zap.Error(err))
		}
		return
	}
	a.stats.pointerOK.Add(1)
}

// putPointer puts the pointer to p on the DHT.
func (a *Authority) putPointer(ctx context.Context, p *published) error {
	ptr := Pointer{Serial: p.doc.Serial, Hash: p.hash}
	key := ed25519.NewKeyFromSeed(a.id.Seed())
	return a.dht.Publish(ctx, key, DirectorySalt(a.networkID), int64(p.doc.Serial), ptr.Encode())
}

// published is a signed document ready to serve: its encoding, hash and descriptor bundle.
type published struct {
	doc    *directory.Directory
	raw    []byte
	hash   [32]byte
	bundle []byte
}

func newPublished(raw, bundle []byte) (*published, error) {
	doc, err := directory.Parse(raw)
	if err != nil {
		return nil, err
	}
	h, err := doc.Hash()
	if err != nil {
		return nil, err
	}
	return &published{doc: doc, raw: raw, hash: h, bundle: bundle}, nil
}
