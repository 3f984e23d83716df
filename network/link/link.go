package link

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link/internal/udp"
	"go.uber.org/zap"
)

var (
	// ErrClosed is returned by operations on a closed link or node, and passed to OnLinkDown for a
	// link closed locally.
	ErrClosed = errors.New("link: closed")
	// ErrDead is passed to OnLinkDown for a link whose peer sent nothing authenticated for DeadAfter.
	ErrDead = errors.New("link: peer is dead")
	// ErrNoSession is returned by Send while the link has no usable session: its keys expired and the
	// rekey handshake has not completed yet. The message is not sent, as a lossy network would drop it.
	ErrNoSession = errors.New("link: no usable session")
	// ErrStarted is returned by Node.SetHandlers, Node.HandleOther and Node.Start once the node has
	// started: the handlers of a socket are fixed before it is read.
	ErrStarted = errors.New("link: node already started")
	// ErrMessageTooLong is returned (wrapped) by Send for a message longer than MaxMessage.
	ErrMessageTooLong = errors.New("link: message longer than MaxMessage")
)

// Link is an encrypted, authenticated channel to one peer, named by the peer's static key. A node has
// at most one live link per peer; all of its links share the node's socket.
type Link struct {
	node *Node
	peer keys.StaticPublic
	macs macKeys // the peer's: mac1 on handshake messages to it, and its cookie replies

	// The fields the transport path reads are atomics, so Send and receive take no lock of the link.
	remote      atomic.Pointer[netip.AddrPort]
	udpTarget   atomic.Pointer[udp.Target] // remote, converted for batch writes
	current     atomic.Pointer[session]    // the session Send uses; nil until the first is usable
	lastSent    atomic.Int64               // node clock, ns
	lastRecv    atomic.Int64               // node clock, ns; authenticated packets only
	established atomic.Bool                // has had a usable session; set once
	closed      atomic.Bool
	done        chan struct{}

	// NAT traversal (traverse.go). A link a rendezvous introduced has a relay route, and sends along it
	// while onRelay, that is until a ping over the direct path is answered and again when nothing comes
	// over that path for DirectTimeout.
	relay    atomic.Pointer[relayRoute]
	onRelay  atomic.Bool
	lastPong atomic.Int64 // node clock, ns: the newest pong that came over the direct path
	// lastDirect is the newest authenticated packet of any kind that came over the direct path of a
	// link with a relay route: under load a data stream proves the path alive when pongs are lost in
	// full socket buffers.
	lastDirect atomic.Int64
	punchRTT   atomic.Int64 // the direct path's newest ping round trip, ns

	mu       sync.Mutex // guards the fields below; never held during a DH or I/O
	previous *session   // replaced, still receiving until retireAt
	next     *session   // responder's new session, waiting for the initiator's first packet
	pending  *pendingHandshake
	dialers  int    // Dial calls waiting for this link
	lastInit tai64n // newest initiation timestamp accepted from the peer
	// cookie is the newest cookie the peer sent (cookie.go), used for mac2 until cookieAt+cookieLifetime.
	cookie    [macLen]byte
	cookieAt  time.Duration
	hasCookie bool
	changed   chan struct{}
	// punching: pings go over the direct path every punchInterval until punchUntil, then at the
	// slower pace of linkTimers (traverseTimers); relayKeepaliveAt is when the relay route, unused while
	// the direct path carries traffic, is next kept warm.
	punchUntil, nextPing, relayKeepaliveAt time.Duration

	// rekeyBudget is the link's own handshake budget for rekeys (ratelimit.go), guarded by the node's
	// rate limiter's lock.
	rekeyBudget bucket
}

func newLink(n *Node, peer keys.StaticPublic, addr netip.AddrPort, now time.Duration) *Link {
	l := &Link{node: n, peer: peer, macs: deriveMACKeys(peer), done: make(chan struct{}), changed: make(chan struct{})}
	l.remote.Store(&addr)
	l.rekeyBudget = n.limiter.linkBudget(now)
	l.lastSent.Store(int64(now))
	l.lastRecv.Store(int64(now))
	return l
}

// Peer returns the static key of the node at the other end.
func (l *Link) Peer() keys.StaticPublic {
	return l.peer
}

// RemoteAddr returns where the link sends: the address of the latest authenticated packet from the
// peer, so it follows a peer that roams.
func (l *Link) RemoteAddr() netip.AddrPort {
	return *l.remote.Load()
}

// Done returns a channel that is closed when the link closes.
func (l *Link) Done() <-chan struct{} {
	return l.done
}

// Close closes the link locally and calls OnLinkDown with ErrClosed. The peer is not told; it sees the
// link go silent. Closing a closed link does nothing.
func (l *Link) Close() error {
	l.shutdown(ErrClosed)
	return nil
}

// route returns where the link sends now: the relay route while it is on it, else the peer's address.
func (l *Link) route() route {
	if l.onRelay.Load() {
		if r := l.relay.Load(); r != nil {
			return route{addr: r.server, channel: r.channel}
		}
	}
	return route{addr: *l.remote.Load()}
}

// roam points the link at a new address; callers have authenticated a packet from it.
func (l *Link) roam(from netip.AddrPort) {
	old := l.remote.Swap(&from)
	if *old != from {
		l.node.log.Debug("link roamed", zap.Stringer("from", *old), zap.Stringer("to", from))
	}
}

// signalLocked wakes everyone waiting for the link's sessions to change. l.mu must be held.
func (l *Link) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// shutdown closes the link once: it forgets every session, leaves the node, and tells OnLinkDown if the
// link had ever been usable (a link that never was is nobody's to mourn). It reports whether this call
// closed it.
func (l *Link) shutdown(reason error) bool {
	if !l.closed.CompareAndSwap(false, true) {
		return false
	}
	n := l.node
	l.mu.Lock()
	cur, prev, next, pending := l.current.Swap(nil), l.previous, l.next, l.pending
	l.previous, l.next, l.pending = nil, nil, nil
	l.signalLocked()
	l.mu.Unlock()
	for _, s := range [...]*session{cur, prev, next} {
		n.index.removeSession(s)
	}
	n.dropPending(pending)
	n.forget(l)
	n.trav.linkClosed(l)
	if n.srv != nil {
		n.srv.linkClosed(l)
	}
	close(l.done)
	if l.established.Load() {
		n.log.Debug("link down", zap.Stringer("remote", l.RemoteAddr()), zap.Error(reason))
		if n.cfg.OnLinkDown != nil {
			n.cfg.OnLinkDown(l, reason)
		}
	}
	return true
}
