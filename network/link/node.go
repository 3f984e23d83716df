package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link/internal/udp"
	"go.uber.org/zap"
)

// handshakeQueueLen bounds the handshake messages waiting for the handshake goroutine; when it is full,
// more are dropped as rate-limited rather than queued.
const handshakeQueueLen = 256

// Node is one UDP socket carrying links to many peers. Its readers decrypt transport packets on the
// reading goroutine; handshakes, which cost X25519 operations, go to a goroutine of their own behind a
// rate limiter, so a handshake flood cannot slow transport packets down.
type Node struct {
	cfg   Config // with defaults filled in
	times derivedTimes
	conn  *net.UDPConn
	log   *zap.Logger
	local *localKey
	epoch time.Time

	index   *indexTable
	peersMu sync.RWMutex
	peers   map[keys.StaticPublic]*Link // nil once the node is closed

	limiter   *rateLimiter
	cookies   *cookieJar
	loadUntil atomic.Int64 // node clock, ns: under load until then (receive.go)
	seen      *newestTimestamps
	stamps    timestampClock

	// Handshake messages wait for the handshake goroutine in three queues, taken in this order, so that
	// a flood of one kind cannot hold up another (receive.go).
	live       chan handshakeJob // rekeys of live links on their own budget, and responses
	proven     chan handshakeJob // initiations with a right mac2
	handshakes chan handshakeJob // initiations that have not proven their source address
	kick       chan struct{}     // asks the timer goroutine for an early pass
	closing    chan struct{}
	closeOnce  sync.Once
	closeErr   error
	wg         sync.WaitGroup

	bufs    sync.Pool   // of *packetBuf, for Send
	batches sync.Pool   // of *batchBuf, for SendBatch
	sock    *udp.Socket // batched reads and writes, UDP GSO and GRO, buffers (internal/udp)
	stats   counters

	trav *traversal        // this node as a client of rendezvous (traverse.go)
	srv  *rendezvousServer // this node as a rendezvous (rendezvous.go); nil unless Config.Rendezvous

	// Set up by New, fixed from Start on: the reading goroutines read them without a lock.
	startMu sync.Mutex
	started bool
	readers []*reader
	other   []func(pkt []byte, from netip.AddrPort) bool // HandleOther's, in order
}

// packetBuf is scratch space for sealing one packet. The nonce is kept here rather than on the stack
// because it is passed to an interface method (cipher.AEAD), which would make a stack copy escape.
type packetBuf struct {
	nonce [12]byte
	data  [relayHeaderLen + MaxPacket]byte // a packet at data[relayHeaderLen:], room for a relay header before it
}

// reader is a reading goroutine's own scratch space; nothing in it is shared. Datagrams are handled
// in place in in's buffers, which the next read reuses.
type reader struct {
	nonce [12]byte
	mac1  mac1Checker
	in    *udp.Reader
}

// options are the settings New does not expose: tests change them.
type options struct {
	limits  limits
	offload udp.Offload
}

// defaultOptions are New's.
// New allows both offloads where the kernel has them; tests turn them off to check the paths without.
var defaultOptions = options{limits: defaultLimits, offload: udp.Offload{GSO: true, GRO: true}}

// limits are the handshake rate limits (ratelimit.go); tests use other ones.
type limits struct {
	perSourceRate, perSourceBurst       int
	globalRate, globalBurst             int
	perLinkRekeyRate, perLinkRekeyBurst int
}

// defaultLimits lets a legitimate peer redial in a hurry (a burst of 40) while a single proven source
// cannot keep more than a small fraction of a core busy with DH, and each budget (unproven sources,
// proven ones, rekeys) at most about one core (2,000 handshakes/s at roughly three X25519 operations
// each); the one handshake goroutine holds them to one core together. A live link may rekey twice a
// second on its own budget (bursts of 8), which covers a rekey's retransmissions.
var defaultLimits = limits{
	perSourceRate: 20, perSourceBurst: 40,
	globalRate: 2000, globalBurst: 2000,
	perLinkRekeyRate: 2, perLinkRekeyBurst: 8,
}

// Listen starts a node on cfg.Conn: New, then Start. A caller that shares the socket with other
// handlers (HandleOther) or hands the node to an engine (SetHandlers) calls New and Start itself.
func Listen(cfg Config) (*Node, error) {
	return listen(cfg, defaultOptions)
}

// New makes a node on cfg.Conn without reading from it: the socket is set up (buffers, offloads) and
// the node can send, but nothing is read, no handshake is answered and no timer runs until Start.
// In between, its owner registers what the socket's datagrams go to (SetHandlers, HandleOther), so
// that the first datagram read already finds every handler in place. A node that is never started
// must still be closed.
func New(cfg Config) (*Node, error) {
	return newNode(cfg, defaultOptions)
}

func listen(cfg Config, o options) (*Node, error) {
	if cfg.OnMessage == nil {
		return nil, errors.Join(errors.New("link: config: OnMessage is nil"), cfg.Validate())
	}
	n, err := newNode(cfg, o)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func newNode(cfg Config, o options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:        cfg,
		times:      deriveTimes(cfg),
		conn:       cfg.Conn,
		log:        cfg.Logger.Named("link"),
		local:      newLocalKey(cfg.Static),
		epoch:      cfg.Now(),
		index:      newIndexTable(),
		peers:      make(map[keys.StaticPublic]*Link),
		seen:       newNewestTimestamps(defaultSeenKeys),
		handshakes: make(chan handshakeJob, handshakeQueueLen),
		live:       make(chan handshakeJob, handshakeQueueLen),
		proven:     make(chan handshakeJob, handshakeQueueLen),
		kick:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
	}
	n.limiter = newRateLimiter(o.limits, n.clock())
	n.cookies = newCookieJar(&n.local.macs)
	n.trav = newTraversal(cfg.Traversal)
	if cfg.Rendezvous != nil {
		n.srv = newRendezvousServer(n, *cfg.Rendezvous)
	}
	n.bufs.New = func() any { return new(packetBuf) }
	n.batches.New = newBatchBuf
	sock, err := udp.Open(cfg.Conn, cfg.SocketBuffer, o.offload, n.log)
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	n.sock = sock
	n.readers = make([]*reader, cfg.Readers)
	for i := range n.readers {
		in, err := sock.NewReader()
		if err != nil {
			return nil, fmt.Errorf("link: reader: %w", err)
		}
		n.readers[i] = &reader{in: in}
	}
	return n, nil
}

// Handlers are what a node does with its links' traffic: Config's fields of the same names, which
// SetHandlers replaces for an engine that is handed a node its owner made (core/relay, core/client).
type Handlers struct {
	OnMessage  func(l *Link, msg []byte)
	OnLinkDown func(l *Link, err error)
	Accept     func(peer keys.StaticPublic) bool
}

// SetHandlers replaces the node's OnMessage, OnLinkDown and Accept (Config) with h's. It must be called
// before Start: it returns ErrStarted after.
func (n *Node) SetHandlers(h Handlers) error {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	if n.started {
		return ErrStarted
	}
	n.cfg.OnMessage, n.cfg.OnLinkDown, n.cfg.Accept = h.OnMessage, h.OnLinkDown, h.Accept
	return nil
}

// HandleOther registers a handler for the socket's datagrams that are not link packets (STUN answers,
// whois questions): each such datagram is offered to the handlers in the order they were registered,
// synchronously on a reading goroutine, until one reports that it took it; pkt is valid only during
// the call. Datagrams that none takes, and all of them without a handler, are counted as garbage drops
// (Stats.DropOther); one longer than 2,048 bytes is never passed on but counted as malformed. Handlers
// are registered before Start (ErrStarted after), so that none misses the first datagrams and the
// reading goroutines read the list without a lock.
func (n *Node) HandleOther(h func(pkt []byte, from netip.AddrPort) bool) error {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	if n.started {
		return ErrStarted
	}
	n.other = append(n.other, h)
	return nil
}

// Start starts the node's Config.Readers reading goroutines, its handshake goroutine and its timer
// goroutine, all stopped by Close. It fails without an OnMessage handler, on a closed node, and when
// the node has been started already (ErrStarted).
func (n *Node) Start() error {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	switch {
	case n.started:
		return ErrStarted
	case n.isClosing():
		return ErrClosed
	case n.cfg.OnMessage == nil:
		return errors.New("link: start: no OnMessage handler (Config or SetHandlers)")
	}
	n.started = true
	for _, r := range n.readers {
		n.wg.Go(func() { n.readLoop(r) })
	}
	n.wg.Go(n.handshakeLoop)
	n.wg.Go(n.timerLoop)
	n.log.Debug("listening", zap.Stringer("addr", n.LocalAddr()), zap.Int("readers", len(n.readers)), zap.Bool("gso", n.sock.GSO()), zap.Bool("gro", n.sock.GRO()))
	return nil
}

// clock is the node's time: the configured clock relative to Listen, so that with time.Now it is
// monotonic and a wall-clock step cannot kill or rekey every link.
func (n *Node) clock() time.Duration {
	return n.cfg.Now().Sub(n.epoch)
}

func (n *Node) isClosing() bool {
	select {
	case <-n.closing:
		return true
	default:
		return false
	}
}

// LocalAddr returns the address the node's socket is bound to.
func (n *Node) LocalAddr() netip.AddrPort {
	if a, ok := n.conn.LocalAddr().(*net.UDPAddr); ok {
		return unmap(a.AddrPort())
	}
	return netip.AddrPort{}
}

// Public returns the node's link key (Config.Static's public half).
func (n *Node) Public() keys.StaticPublic { return n.local.pub }

// Link returns the live link to peer, or nil if there is none. A link is live from its first usable
// session until it closes; a handshake still under way does not count.
func (n *Node) Link(peer keys.StaticPublic) *Link {
	n.peersMu.RLock()
	l := n.peers[peer]
	n.peersMu.RUnlock()
	if l == nil || l.closed.Load() || !l.established.Load() {
		return nil
	}
	return l
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	return n.stats.snapshot()
}

// Close stops every goroutine the node started (none if it was never started), closes its socket and then its links (calling
// OnLinkDown for each established one with ErrClosed). It is safe to call more than once; later calls
// return nil.
func (n *Node) Close() error {
	first := false
	n.closeOnce.Do(func() {
		first = true
		n.startMu.Lock() // a Start under way finishes starting its goroutines before Wait
		close(n.closing)
		n.startMu.Unlock()
		if err := n.conn.Close(); err != nil {
			n.closeErr = fmt.Errorf("link: close socket: %w", err)
		}
		n.wg.Wait()
		n.peersMu.Lock()
		links := make([]*Link, 0, len(n.peers))
		for _, l := range n.peers {
			links = append(links, l)
		}
		n.peers = nil
		n.peersMu.Unlock()
		for _, l := range links {
			l.shutdown(ErrClosed)
		}
	})
	if !first {
		return nil
	}
	return n.closeErr
}

// linkFor returns the link to peer, making one (pointed at addr, not yet usable) if there is none.
func (n *Node) linkFor(peer keys.StaticPublic, addr netip.AddrPort) (*Link, error) {
	n.peersMu.RLock()
	l := n.peers[peer]
	n.peersMu.RUnlock()
	if l != nil && !l.closed.Load() {
		return l, nil
	}
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if n.peers == nil {
		return nil, ErrClosed
	}
	if l = n.peers[peer]; l == nil || l.closed.Load() {
		l = newLink(n, peer, addr, n.clock())
		n.peers[peer] = l
	}
	return l, nil
}

// forget removes a closed link from the peer map.
func (n *Node) forget(l *Link) {
	n.peersMu.Lock()
	if n.peers[l.peer] == l {
		delete(n.peers, l.peer)
	}
	n.peersMu.Unlock()
}

// links appends every link to dst.
func (n *Node) links(dst []*Link) []*Link {
	n.peersMu.RLock()
	for _, l := range n.peers {
		dst = append(dst, l)
	}
	n.peersMu.RUnlock()
	return dst
}

// readLoop reads the socket until the node closes.
func (n *Node) readLoop(r *reader) {
	for {
		if _, err := n.readBatch(r); err != nil {
			if n.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Errors here are transient (an ICMP error reported on the socket, a full buffer); pausing
			// keeps a persistent one from spinning a core.
			n.log.Debug("read", zap.Error(err))
			select {
			case <-n.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// readBatch waits for datagrams, reads those queued (up to MaxBatch, with one system call) and
// handles each in turn. It returns how many reads it took, a coalesced one (UDP GRO) counting once.
func (n *Node) readBatch(r *reader) (int, error) {
	count, err := r.in.Read()
	if err != nil {
		return 0, err
	}
	n.stats.readCalls.Add(1)
	n.stats.readMsgs.Add(uint64(count))
	for i := range count {
		read, segSize, from, ok := r.in.Datagram(i)
		if !ok {
			n.dropUnreadable(read)
			continue
		}
		n.handleRead(r, read, segSize, unmap(from))
	}
	return count, nil
}

// WriteTo sends a datagram that is not a link packet (a STUN request, say) from the node's socket, so
// that whatever it learns about the socket's mapping holds for the links too. Answers arrive through
// HandleOther's handlers. It works before Start, but answers are read only from Start on.
func (n *Node) WriteTo(pkt []byte, to netip.AddrPort) error { return n.write(pkt, to) }

// writeVia sends the size-byte link packet at buf[relayHeaderLen:] along rt: as it is to a direct
// route's address, or behind a relay header naming rt's channel to the rendezvous.
func (n *Node) writeVia(buf []byte, size int, rt route) error {
	if rt.channel == 0 {
		return n.write(buf[relayHeaderLen:relayHeaderLen+size], rt.addr)
	}
	putRelayHeader(buf, rt.channel)
	return n.write(buf[:relayHeaderLen+size], rt.addr)
}

// write sends one datagram and counts it.
func (n *Node) write(pkt []byte, to netip.AddrPort) error {
	if _, err := n.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		if n.isClosing() {
			return ErrClosed
		}
		return err
	}
	n.stats.writeCalls.Add(1)
	n.stats.writeMsgs.Add(1)
	n.stats.packetsOut.Add(1)
	n.stats.bytesOut.Add(uint64(len(pkt)))
	return nil
}

// unmap turns an IPv4-mapped IPv6 address into plain IPv4, so that one peer has one address whether
// the socket is dual-stack or not.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
