package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Errors a Node's operations return; test with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Node.
	ErrClosed = errors.New("dht: node closed")
	// ErrNoNodes means an operation had no node to ask, or none answered.
	ErrNoNodes = errors.New("dht: no node reachable")
)

// Node is one DHT node: an anacrolix/dht server on the caller's socket, with MeshVPN's peer and item
// stores, limits and safeguards around it. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *zap.Logger
	srv   *dht.Server
	conn  *guardConn
	peers *peerStore
	items *itemStore
	intro *introducer
	stats counters

	responders *responders   // who answered us lately (good nodes)
	limiter    *rate.Limiter // the server's own send limiter
	answering  chan struct{} // find_node answers being prepared

	ctx     context.Context // ends when Close begins
	cancel  context.CancelFunc
	started chan struct{} // closed once srv is set

	mu     sync.Mutex // guards closed and the wg.Add that must not follow it
	closed bool
	wg     sync.WaitGroup // every goroutine and operation of the node

	bootMu       sync.Mutex
	bootstrapped atomic.Bool // Bootstrap has run
	maintaining  atomic.Bool // the table maintainer has started
}

// New starts a node on cfg.Conn. It contacts no one until Bootstrap.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With(zap.Stringer("dht", cfg.Conn.LocalAddr()))

	var saved nodesFile
	if cfg.NodesFile != "" {
		f, err := readNodesFile(cfg.NodesFile)
		if err != nil {
			// A damaged file costs the saved table, not the start, as long as there is another way in.
			log.Warn("ignoring nodes file", zap.String("path", cfg.NodesFile), zap.Error(err))
		}
		saved = f
	}
	if len(cfg.Bootstrap) == 0 && !cfg.First && len(saved.Nodes) == 0 {
		return nil, fmt.Errorf("dht: no starting nodes: Bootstrap is empty and nodes file %q has none (set First for a network's first node)", cfg.NodesFile)
	}

	rs := newResponders(time.Now, 2*cfg.QueryTimeout)
	n := &Node{
		cfg:        cfg,
		log:        log,
		conn:       newGuardConn(cfg.Conn, log, rs),
		responders: rs,
		answering:  make(chan struct{}, maxAnswering),
		peers:      newPeerStore(cfg.Peers, time.Now),
		items:      newItemStore(cfg.MaxItems, cfg.ItemLifetime, time.Now),
		intro:      newIntroducer(time.Now),
		started:    make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	public := publicIP(cfg.PublicIP, cfg.Conn.LocalAddr())
	sc := serverConfig(cfg, serverParts{
		conn:       n.conn,
		id:         nodeID(saved.Self, public),
		publicIP:   public,
		peers:      n.peers,
		items:      n.items,
		onQuery:    n.onQuery,
		onAnnounce: func() { n.stats.announcesIn.Add(1) },
	})
	n.limiter = sc.SendLimiter
	srv, err := dht.NewServer(sc)
	if err != nil {
		n.conn.Close()
		return nil, fmt.Errorf("dht: start server: %w", err)
	}
	n.srv = srv
	close(n.started)
	for _, ni := range saved.Nodes {
		// A full bucket refuses a node; the others still load.
		_ = srv.AddNode(ni)
	}
	if cfg.NodesFile != "" {
		n.goTracked(n.saveEvery)
	}
	log.Debug("dht node started", zap.Stringer("id", krpc.ID(srv.ID())), zap.Int("saved nodes", len(saved.Nodes)))
	return n, nil
}

// serverParts are the pieces of a library server config that a Node makes itself.
type serverParts struct {
	conn       net.PacketConn
	id         krpc.ID
	publicIP   netip.Addr
	peers      peer_store.Interface
	items      bep44.Store
	onQuery    func(*krpc.Msg, net.Addr) bool
	onAnnounce func()
}

// serverConfig builds the library's config from ours (with defaults applied). Every field whose
// library default is dangerous is set here, so that a test can check them without a network:
// StartingNodes (the default resolves public routers), Conn (the default listens on every interface),
// PeerStore (the default is broken), SendLimiter (the default is shared by the whole process) and Exp
// (zero expires items at once).
func serverConfig(cfg Config, p serverParts) *dht.ServerConfig {
	sc := &dht.ServerConfig{
		NodeId:           p.id,
		Conn:             p.conn,
		StartingNodes:    startingNodes(cfg.Bootstrap),
		PeerStore:        p.peers,
		Store:            p.items,
		Exp:              cfg.ItemLifetime,
		SendLimiter:      rate.NewLimiter(cfg.SendRate, cfg.SendBurst),
		QueryResendDelay: func() time.Duration { return cfg.QueryTimeout },
		Logger:           libraryLogger(cfg.Logger),
		OnQuery:          p.onQuery,
		OnAnnouncePeer: func(metainfo.Hash, net.IP, int, bool) {
			if p.onAnnounce != nil {
				p.onAnnounce()
			}
		},
	}
	if p.publicIP.IsValid() {
		sc.PublicIP = p.publicIP.AsSlice()
	}
	return sc
}

// startingNodes returns the library's fallback for an empty routing table: our Bootstrap list and
// nothing else.
func startingNodes(bootstrap []netip.AddrPort) dht.StartingNodesGetter {
	addrs := make([]dht.Addr, len(bootstrap))
	for i, ap := range bootstrap {
		addrs[i] = dht.NewAddr(udpAddr(ap))
	}
	return func() ([]dht.Addr, error) { return addrs, nil }
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// publicIP returns the address our BEP 42 node id is made for: the configured one, else the socket's
// own when it is bound to a public address, else none (loopback and private addresses are exempt).
func publicIP(configured netip.Addr, local net.Addr) netip.Addr {
	if configured.IsValid() {
		return configured.Unmap()
	}
	ua, ok := local.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ua.AddrPort().Addr().Unmap()
	if ip.IsGlobalUnicast() && !ip.IsPrivate() {
		return ip
	}
	return netip.Addr{}
}

// nodeID keeps the saved id when it is still valid for our public address, and otherwise makes a
// random one, secured for that address under BEP 42 when there is one.
func nodeID(saved krpc.ID, public netip.Addr) krpc.ID {
	if !public.IsValid() {
		if !saved.IsZero() {
			return saved
		}
		return krpc.RandomNodeID()
	}
	ip := public.AsSlice()
	if !saved.IsZero() && dht.NodeIdSecure(saved, ip) {
		return saved
	}
	id := krpc.RandomNodeID()
	dht.SecureNodeId(&id, ip)
	return id
}

// Bootstrap fills the routing table from the starting nodes and the saved table, then starts the
// library's table maintainer (it must not run before: it would bootstrap concurrently, and one of
// the two would fail). The starting nodes are pinged first: that puts them in the table even when
// saved nodes have gone stale (the library consults starting nodes only when its table is empty),
// and it makes a fresh bootstrap node ping us back (see introducer) before we finish, so that it
// can hand us out to the next joiner. A First node with nobody to reach returns nil at once; its
// maintainer starts when the first node joins.
func (n *Node) Bootstrap(ctx context.Context) error {
	ctx, done, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	n.bootMu.Lock()
	defer n.bootMu.Unlock()

	answered := n.pingAll(ctx, n.cfg.Bootstrap)
	if answered == 0 && len(n.cfg.Bootstrap) > 0 && n.srv.NumNodes() == 0 {
		return fmt.Errorf("dht bootstrap: %w: none of %d starting nodes answered", ErrNoNodes, len(n.cfg.Bootstrap))
	}
	if len(n.cfg.Bootstrap) == 0 && n.srv.NumNodes() == 0 {
		// The library's bootstrap with nothing to start from returns without stopping its
		// traversal, whose goroutine then lives forever (and its maintainer would retry every
		// minute). So neither runs until someone is in the table.
		if !n.cfg.First {
			return fmt.Errorf("dht bootstrap: %w: no starting nodes, and none of the saved ones is left", ErrNoNodes)
		}
		n.bootstrapped.Store(true)
		return nil
	}
	// The library's walk sends each find_node once. If none was answered, our table holds only
	// the starting nodes, and every lookup would then hang on one query to one of them; so walk
	// again, a few times at most.
	var ts dht.TraversalStats
	for walk := 1; ; walk++ {
		ts, err = n.srv.BootstrapContext(ctx)
		if err != nil || ts.NumResponses > 0 || walk == bootstrapWalks {
			break
		}
		n.log.Debug("dht bootstrap: no find_node answered, walking again", zap.Int("walk", walk), zap.Uint32("asked", ts.NumAddrsTried))
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("dht bootstrap: %w", ctx.Err())
	case err != nil:
		return fmt.Errorf("dht bootstrap: %w: %v", ErrNoNodes, err)
	case ts.NumResponses == 0 && answered == 0 && !n.cfg.First:
		return fmt.Errorf("dht bootstrap: %w: none of %d nodes asked answered", ErrNoNodes, ts.NumAddrsTried)
	}
	n.bootstrapped.Store(true)
	n.maybeStartMaintainer()
	n.log.Debug("dht bootstrapped", zap.Int("nodes", n.srv.NumNodes()), zap.Uint32("responses", ts.NumResponses))
	return nil
}

// bootstrapWalks bounds the library's bootstrap walks in one Bootstrap while none of their find_node
// queries is answered.
const bootstrapWalks = 3

// maybeStartMaintainer starts the library's table maintainer once, after a Bootstrap and once the
// table holds a node.
func (n *Node) maybeStartMaintainer() {
	if !n.bootstrapped.Load() || n.maintaining.Load() || n.srv.NumNodes() == 0 {
		return
	}
	if n.maintaining.CompareAndSwap(false, true) && !n.goTracked(n.srv.TableMaintainer) {
		n.maintaining.Store(false)
	}
}

// pingAll pings addrs concurrently and returns how many answered; answers enter the routing table.
func (n *Node) pingAll(ctx context.Context, addrs []netip.AddrPort) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for _, ap := range addrs {
		wg.Go(func() {
			res := n.query(ctx, dht.NewAddr(udpAddr(ap)), "ping", krpc.MsgArgs{})
			if res.ToError() == nil {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return answered
}

// onQuery sees every query before the library answers it, and reports whether the library should
// answer it. It runs on the library's read loop with the server's lock held, so it only counts and
// hands work to goroutines.
func (n *Node) onQuery(m *krpc.Msg, source net.Addr) (propagate bool) {
	n.stats.countQuery(m.Q)
	if n.bootstrapped.Load() && !n.maintaining.Load() {
		// A first node's maintainer waits for its first joiner, who has just been added.
		n.goTracked(n.maybeStartMaintainer)
	}
	if !m.ReadOnly { // BEP 43: read-only nodes do not answer
		n.introduce(source)
	}
	return !(m.Q == "find_node" && n.answerFindNode(m, source))
}

// Addr returns the address of the node's socket.
func (n *Node) Addr() netip.AddrPort {
	if ua, ok := n.conn.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(n.conn.LocalAddr().String())
	return ap
}

// ID returns the node's 20-byte DHT node id.
func (n *Node) ID() [20]byte { return n.srv.ID() }

// Close stops the node: it saves the routing table (if NodesFile is set), closes the socket and
// returns once every goroutine it or the library started for it has ended.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()

	var err error
	if n.cfg.NodesFile != "" {
		if err = n.save(); err != nil {
			err = fmt.Errorf("dht: save nodes file: %w", err)
		}
	}
	n.conn.stopHanding()
	n.srv.Close()
	n.conn.Close()
	select {
	case <-n.conn.readerDone:
	case <-time.After(time.Second):
		n.log.Error("dht: the library's reader did not stop")
	}
	n.wg.Wait()
	// The library's queries without a context end at their timeout; wait for them, so that nothing
	// of the node outlives Close.
	deadline := time.Now().Add(n.cfg.QueryTimeout + time.Second)
	for n.srv.Stats().OutstandingTransactions > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// begin registers an operation, which ends with ctx, with Close, or when done is called.
func (n *Node) begin(ctx context.Context) (context.Context, func(), error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, nil, ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		n.wg.Done()
	}, nil
}

// goTracked runs f on a goroutine that Close waits for; it reports false if the node is closed.
func (n *Node) goTracked(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Go(f)
	return true
}

// saveEvery writes the routing table to the nodes file every SaveInterval until Close.
func (n *Node) saveEvery() {
	t := time.NewTicker(n.cfg.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if err := n.save(); err != nil {
				n.log.Warn("dht: save nodes file", zap.String("path", n.cfg.NodesFile), zap.Error(err))
			}
		}
	}
}

// save writes the routing table to the nodes file, unless it is empty: an empty table would only
// erase what the last run learnt.
func (n *Node) save() error {
	nodes := n.srv.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	return writeNodesFile(n.cfg.NodesFile, nodesFile{Self: n.srv.ID(), Nodes: nodes})
}
