package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link/internal/udp"
	"go.uber.org/zap"
)

// NAT traversal, as Tailscale does it: a link to a node behind a NAT starts relayed and moves to the
// direct path once that is proven, without the upper layers noticing.
//
// A node behind a NAT registers with a rendezvous (Register): a public node it keeps a link to, so its
// NAT keeps a mapping open towards it. A peer that wants it asks the rendezvous (DialVia, a connect
// message); the rendezvous makes a pair of relay channels and introduces each node to the other with
// the address it sees it at and the channel to send on. The dialler's handshake then goes through the
// rendezvous (relayed packets: type 5, three zero bytes, the channel, the link packet), so the link is
// usable after one relayed round trip. Meanwhile both nodes send pings straight to the other's address
// every PunchInterval: the first one out of each NAT opens it for the other, and the first pong that
// comes back over the direct path moves the link there (PathPunched). The session and its counters are
// the same on both paths, so moving loses nothing; a packet still in flight on the old path is accepted
// by the replay window like any reordered one. Behind two address-dependent (symmetric) NATs no ping
// gets through, and the link stays relayed (PathRelayed); pings are retried every PunchRetry in case
// the NATs change. On a direct path a ping goes every DirectPing, and when nothing authenticated (no
// pong, no other packet) has come over it for DirectTimeout the link falls back to the relay, which it
// has kept warm with a keepalive every RelayKeepalive.
//
// Connection states, per link: INIT (no link) → STUN (the node's own mapping is known from
// natcheck, outside this package) → RELAYED (introduced, handshake through the rendezvous, traffic
// flowing) → HOLE_PUNCH (pings on the direct path, traffic still relayed) → ESTABLISHED (punched), or
// stays RELAYED; ESTABLISHED → RELAYED again when the direct path stops answering.

// Rendezvous names a node that introduces peers behind NATs to each other and relays their sealed
// packets when no direct path can be punched: its link key and the address its links reach it at.
type Rendezvous struct {
	Key  keys.StaticPublic
	Addr netip.AddrPort
}

// IsZero reports whether rv names no rendezvous.
func (rv Rendezvous) IsZero() bool { return !rv.Addr.IsValid() }

// PathKind is how a link's packets travel.
type PathKind uint8

const (
	// PathDirect: straight to the peer's address, with no rendezvous involved (a peer that is not
	// behind a NAT, or a link the NAT'd side opened itself).
	PathDirect PathKind = iota
	// PathPunched: straight to the peer's address, through a hole punched with a rendezvous's help.
	PathPunched
	// PathRelayed: through a rendezvous that forwards the sealed packets.
	PathRelayed
)

func (k PathKind) String() string {
	switch k {
	case PathDirect:
		return "direct"
	case PathPunched:
		return "punched"
	case PathRelayed:
		return "relayed"
	}
	return "unknown"
}

// Path is how a link's packets travel now.
type Path struct {
	Kind PathKind
	// Via is the rendezvous that introduced the peers (and relays for PathRelayed); zero for PathDirect.
	Via keys.StaticPublic
	// RTT is the newest round trip of a ping over the direct path (PathPunched), else zero.
	RTT time.Duration
}

// Path returns how the link's packets travel now.
func (l *Link) Path() Path {
	r := l.relay.Load()
	if r == nil {
		return Path{Kind: PathDirect}
	}
	if l.onRelay.Load() {
		return Path{Kind: PathRelayed, Via: r.via}
	}
	return Path{Kind: PathPunched, Via: r.via, RTT: time.Duration(l.punchRTT.Load())}
}

// Paths counts the node's live links by how their packets travel, indexed by PathKind.
func (n *Node) Paths() [3]int {
	var counts [3]int
	n.peersMu.RLock()
	for _, l := range n.peers {
		if l.established.Load() && !l.closed.Load() {
			counts[l.Path().Kind]++
		}
	}
	n.peersMu.RUnlock()
	return counts
}

// TraversalTimes are the timers of NAT traversal; zero fields take the defaults.
type TraversalTimes struct {
	// PunchInterval is the pace of pings on the direct path during the PunchWindow after an
	// introduction (default 100 ms, 5 s).
	PunchInterval, PunchWindow time.Duration
	// PunchRetry is how often a relayed link tries the direct path again after that (default 10 s).
	PunchRetry time.Duration
	// DirectPing is the pace of pings on a punched path, and DirectTimeout how long it may go without a
	// pong before the link falls back to its relay (default 1 s, 3 s).
	DirectPing, DirectTimeout time.Duration
	// RelayKeepalive is how often a punched link sends a keepalive through its relay, so that the
	// rendezvous keeps the channel for a fallback (default 25 s; rendezvous drop channels idle for 2 min).
	RelayKeepalive time.Duration
	// AskRetry is how often DialVia and Register repeat an unanswered connect or register (default 500 ms).
	AskRetry time.Duration
}

func (t TraversalTimes) withDefaults() TraversalTimes {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.PunchInterval, 100*time.Millisecond)
	def(&t.PunchWindow, 5*time.Second)
	def(&t.PunchRetry, 10*time.Second)
	def(&t.DirectPing, 500*time.Millisecond)
	def(&t.DirectTimeout, 2*time.Second)
	def(&t.RelayKeepalive, 25*time.Second)
	def(&t.AskRetry, 500*time.Millisecond)
	return t
}

// Bounds on what a node keeps for introductions, so that a hostile rendezvous cannot grow them.
const (
	maxIntroductions = 4096
	// unusedIntroAfter is how long an introduction no link has taken is kept.
	unusedIntroAfter = 30 * time.Second
)

// route is where one packet goes: straight to addr, or (channel ≠ 0) to the rendezvous at addr, to be
// forwarded on channel.
type route struct {
	addr    netip.AddrPort
	channel uint32
}

// relayRoute is a link's way through a rendezvous.
type relayRoute struct {
	server  netip.AddrPort
	channel uint32
	via     keys.StaticPublic
	target  atomic.Pointer[udp.Target] // server, converted for batch writes
}

// channelInfo is an introduction: a rendezvous's channel towards a peer.
type channelInfo struct {
	key       channelKey
	via       keys.StaticPublic
	peer      keys.StaticPublic
	candidate netip.AddrPort // the peer's address as the rendezvous sees it
	born      time.Duration
	link      *Link // the link that took it; nil until one does
}

type channelKey struct {
	server  netip.AddrPort
	channel uint32
}

// asking is a DialVia or Register waiting for its rendezvous's answer.
type asking struct {
	via    keys.StaticPublic
	answer chan answer // buffered: the reader never blocks on it
}

type answer struct {
	intro  *channelInfo // connect
	reason byte         // refused, else 0
}

// traversal is a node's side of NAT traversal as a client of rendezvous.
type traversal struct {
	times TraversalTimes

	mu         sync.RWMutex
	channels   map[channelKey]*channelInfo
	dialing    map[keys.StaticPublic]*asking // by the peer DialVia wants
	registered map[keys.StaticPublic]*Link   // by rendezvous key: the link registered over
	asked      map[keys.StaticPublic]*asking // by rendezvous key: Register calls waiting
}

func newTraversal(t TraversalTimes) *traversal {
	return &traversal{
		times:      t.withDefaults(),
		channels:   make(map[channelKey]*channelInfo),
		dialing:    make(map[keys.StaticPublic]*asking),
		registered: make(map[keys.StaticPublic]*Link),
		asked:      make(map[keys.StaticPublic]*asking),
	}
}

// channel returns the introduction for a relayed packet from server on channel, or nil.
func (t *traversal) channel(channel uint32, server netip.AddrPort) *channelInfo {
	t.mu.RLock()
	c := t.channels[channelKey{server, channel}]
	t.mu.RUnlock()
	return c
}

// linkClosed forgets what l held: its introduction, and a registration made over it.
func (t *traversal) linkClosed(l *Link) {
	t.mu.Lock()
	if r := l.relay.Load(); r != nil {
		k := channelKey{r.server, r.channel}
		if c := t.channels[k]; c != nil && c.link == l {
			delete(t.channels, k)
		}
	}
	if t.registered[l.peer] == l {
		delete(t.registered, l.peer)
	}
	t.mu.Unlock()
}

// expire drops introductions no link took.
func (t *traversal) expire(now time.Duration) {
	t.mu.Lock()
	for k, c := range t.channels {
		if c.link == nil && now-c.born >= unusedIntroAfter {
			delete(t.channels, k)
		}
	}
	t.mu.Unlock()
}

// DialVia returns a usable link to peer, a node behind a NAT that keeps a registration with rv. It
// returns the live link if there is one. Otherwise it dials rv, asks it for an introduction, and
// shakes hands through it: the link returned is relayed, and moves to a direct path by itself once
// one is punched (Link.Path tells which). It fails when rv refuses (the peer is not registered there,
// or rv is full) or ctx ends first.
func (n *Node) DialVia(ctx context.Context, peer keys.StaticPublic, rv Rendezvous) (*Link, error) {
	if rv.IsZero() {
		return nil, errors.New("link: dial via: no rendezvous")
	}
	if peer == n.local.pub {
		return nil, errors.New("link: dial via: this node's own key")
	}
	// A live link is used as it is: also the one a peer registered with this very node keeps to it.
	if l := n.Link(peer); l != nil {
		return l, nil
	}
	if rv.Key == n.local.pub {
		return nil, errors.New("link: dial via: the peer is not registered with this node")
	}
	rl, err := n.Dial(ctx, rv.Addr, rv.Key)
	if err != nil {
		return nil, fmt.Errorf("link: dial via: rendezvous: %w", err)
	}
	a, done := n.trav.expect(n.trav.dialing, peer, rv.Key)
	defer done()
	ans, err := n.ask(ctx, rl, a, &control{typ: ctlConnect, peer: peer})
	if err != nil {
		return nil, fmt.Errorf("link: dial via: %w", err)
	}
	if ans.reason != 0 {
		return nil, fmt.Errorf("link: dial via: rendezvous refused: %s", refusal(ans.reason))
	}
	info := ans.intro
	l, usable, start, err := n.enlist(peer, info.candidate)
	if err != nil || usable {
		return l, err
	}
	n.attachRelay(l, info)
	return n.await(ctx, l, start)
}

// Register makes this node reachable through rv: it dials rv and registers with it, with tag (at most
// MaxTag bytes) for rv to show to whoever asks (a relay gives its identity key, for the discovery
// authorities). It returns the link to rv once rv has confirmed. The registration lasts as long as
// that link: the caller waits for its Done and registers again. The link's keepalives (every
// KeepaliveInterval) keep this node's NAT mapping towards rv open.
func (n *Node) Register(ctx context.Context, rv Rendezvous, tag []byte) (*Link, error) {
	if rv.IsZero() {
		return nil, errors.New("link: register: no rendezvous")
	}
	if len(tag) > MaxTag {
		return nil, fmt.Errorf("link: register: %d-byte tag, at most %d", len(tag), MaxTag)
	}
	rl, err := n.Dial(ctx, rv.Addr, rv.Key)
	if err != nil {
		return nil, fmt.Errorf("link: register: rendezvous: %w", err)
	}
	a, done := n.trav.expect(n.trav.asked, rv.Key, rv.Key)
	defer done()
	ans, err := n.ask(ctx, rl, a, &control{typ: ctlRegister, tag: tag})
	if err != nil {
		return nil, fmt.Errorf("link: register: %w", err)
	}
	if ans.reason != 0 {
		return nil, fmt.Errorf("link: register: rendezvous refused: %s", refusal(ans.reason))
	}
	n.log.Debug("registered with rendezvous", zap.Stringer("rendezvous", rl.RemoteAddr()))
	return rl, nil
}

// expect records, in m under key, that an answer from the rendezvous via is awaited, and returns the
// record and a function that forgets it.
func (t *traversal) expect(m map[keys.StaticPublic]*asking, key, via keys.StaticPublic) (*asking, func()) {
	a := &asking{via: via, answer: make(chan answer, 1)}
	t.mu.Lock()
	m[key] = a
	t.mu.Unlock()
	return a, func() {
		t.mu.Lock()
		if m[key] == a {
			delete(m, key)
		}
		t.mu.Unlock()
	}
}

// ask sends c over rl every AskRetry until a answers, ctx ends or rl closes.
func (n *Node) ask(ctx context.Context, rl *Link, a *asking, c *control) (answer, error) {
	tick := time.NewTicker(n.trav.times.AskRetry)
	defer tick.Stop()
	for {
		if err := rl.sendControl(c); err != nil && !errors.Is(err, ErrNoSession) {
			return answer{}, err
		}
		select {
		case ans := <-a.answer:
			return ans, nil
		case <-tick.C:
		case <-rl.done:
			return answer{}, errors.New("link to the rendezvous closed")
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-n.closing:
			return answer{}, ErrClosed
		}
	}
}

func refusal(reason byte) string {
	switch reason {
	case refusedNotRendezvous:
		return "not a rendezvous"
	case refusedUnknownPeer:
		return "peer not registered there"
	case refusedFull:
		return "full"
	case refusedSelf:
		return "asked for itself"
	}
	return fmt.Sprintf("reason %d", reason)
}

// attachRelay gives l the introduction's relay route and starts punching. A link already on that route
// keeps its state.
func (n *Node) attachRelay(l *Link, info *channelInfo) {
	t := n.trav
	t.mu.Lock()
	info.link = l
	t.mu.Unlock()
	if r := l.relay.Load(); r != nil && r.server == info.key.server && r.channel == info.key.channel {
		return
	}
	rr := &relayRoute{server: info.key.server, channel: info.key.channel, via: info.via}
	now := n.clock()
	l.mu.Lock()
	l.punchUntil = now + t.times.PunchWindow
	l.nextPing = l.punchUntil
	l.relayKeepaliveAt = now + t.times.RelayKeepalive
	l.mu.Unlock()
	l.lastPong.Store(0)
	l.onRelay.Store(true)
	l.relay.Store(rr)
	go n.punch(l, rr, t.times)
}

// punch pings the peer's address every PunchInterval for the punch window, until a pong moves the link
// to the direct path. Until the handshake through the relay completes there is no session to ping
// under; the first ping goes as soon as there is one.
func (n *Node) punch(l *Link, rr *relayRoute, t TraversalTimes) {
	window := time.NewTimer(t.PunchWindow)
	defer window.Stop()
	next := time.Duration(0)
	for l.relay.Load() == rr && l.onRelay.Load() {
		if n.ping(l) == nil {
			next = t.PunchInterval
		} else {
			next = min(t.PunchInterval, punchSessionPoll)
		}
		if cur := l.current.Load(); cur != nil && cur.initiator && !cur.heard.Load() {
			// The responder cannot send (so cannot ping, and its NAT stays shut) until a packet of ours
			// under the new session reaches it, and only the relay gets one there: keep sending one.
			_ = l.sendVia(nil, route{addr: rr.server, channel: rr.channel}, 0)
		}
		select {
		case <-time.After(next):
		case <-window.C:
			return
		case <-l.done:
			return
		case <-n.closing:
			return
		}
	}
}

// punchSessionPoll is how often punch looks for the session its first ping needs.
const punchSessionPoll = 2 * time.Millisecond

// ping sends a ping straight to the peer's address, stamped with the node's clock.
func (n *Node) ping(l *Link) error {
	return l.sendControlVia(&control{typ: ctlPing, stamp: uint64(n.clock())}, route{addr: l.RemoteAddr()})
}

// traverseTimers does what is due on a link with a relay route: fall back to the relay when the direct
// path stopped answering, ping the direct path at the slow paces, keep the relay warm.
func (n *Node) traverseTimers(l *Link, rr *relayRoute, now time.Duration) {
	t := n.trav.times
	onRelay := l.onRelay.Load()
	heard := time.Duration(max(l.lastPong.Load(), l.lastDirect.Load()))
	if !onRelay && now-heard >= t.DirectTimeout && l.onRelay.CompareAndSwap(false, true) {
		onRelay = true
		n.stats.pathFallbacks.Add(1)
		n.log.Debug("direct path silent: back to the relay", zap.Stringer("remote", l.RemoteAddr()))
	}
	var ping, warm bool
	l.mu.Lock()
	if now >= l.punchUntil && now >= l.nextPing {
		ping = true
		l.nextPing = now + t.DirectPing
		if onRelay {
			l.nextPing = now + t.PunchRetry
		}
	}
	if !onRelay && now >= l.relayKeepaliveAt {
		warm = true
		l.relayKeepaliveAt = now + t.RelayKeepalive
	}
	l.mu.Unlock()
	if ping {
		_ = n.ping(l)
	}
	if warm {
		_ = l.sendVia(nil, route{addr: rr.server, channel: rr.channel}, 0)
	}
}

// sendControl sends a control message along the link's route.
func (l *Link) sendControl(c *control) error { return l.sendControlVia(c, l.route()) }

func (l *Link) sendControlVia(c *control, rt route) error {
	var buf [64 + MaxTag]byte
	return l.sendVia(appendControl(buf[:0], c), rt, flagControl)
}

// onControl handles a control message from l's peer that came by rt.
func (n *Node) onControl(l *Link, msg []byte, rt route) {
	c, err := parseControl(msg)
	if err != nil {
		n.stats.dropMalformed.Add(1)
		return
	}
	switch c.typ {
	case ctlPing:
		_ = l.sendControlVia(&control{typ: ctlPong, stamp: c.stamp}, rt)
		if rt.channel == 0 && l.onRelay.Load() {
			// The peer's ping got through, so this node's NAT is open towards it now: a ping of ours
			// that its NAT dropped a moment ago would pass, and need not wait for the next round.
			_ = n.ping(l)
		}
	case ctlPong:
		n.onPong(l, c.stamp, rt)
	case ctlRegister, ctlConnect:
		if n.srv == nil {
			_ = l.sendControl(&control{typ: ctlRefused, what: c.typ, peer: c.peer, reason: refusedNotRendezvous})
			return
		}
		if c.typ == ctlRegister {
			n.srv.register(l, c.tag)
		} else {
			n.srv.connect(l, c.peer)
		}
	case ctlRegistered, ctlIntro, ctlRefused:
		n.onAnswer(l, &c)
	}
}

// onPong moves a relayed link to the direct path when the pong came over it: the ping went out of
// this node's NAT and the pong in, so the path works both ways.
func (n *Node) onPong(l *Link, stamp uint64, rt route) {
	if rt.channel != 0 || l.relay.Load() == nil {
		return
	}
	now := n.clock()
	if sent := time.Duration(stamp); sent <= now {
		l.punchRTT.Store(int64(now - sent))
	}
	l.lastPong.Store(int64(now))
	if l.onRelay.CompareAndSwap(true, false) {
		n.stats.pathUpgrades.Add(1)
		n.log.Debug("direct path confirmed: link moves off the relay", zap.Stringer("remote", l.RemoteAddr()))
	}
}

// onAnswer takes a rendezvous's answer to a Register or DialVia. An answer nobody asked that
// rendezvous for is dropped, and so is an introduction once maxIntroductions are kept.
func (n *Node) onAnswer(l *Link, c *control) {
	t := n.trav
	now := n.clock()
	t.mu.Lock()
	var a *asking
	switch {
	case c.typ == ctlRegistered || c.typ == ctlRefused && c.what == ctlRegister:
		a = t.asked[l.peer]
		if a != nil && c.typ == ctlRegistered {
			t.registered[l.peer] = l
		}
	default:
		if d := t.dialing[c.peer]; d != nil && d.via == l.peer {
			a = d
		}
	}
	var ans answer
	ok := a != nil
	switch c.typ {
	case ctlRefused:
		ans.reason = max(c.reason, 1)
	case ctlIntro:
		// Introductions also come unasked to a node registered with l's peer: someone is dialling it.
		ok = ok || t.registered[l.peer] == l
		k := channelKey{l.RemoteAddr(), c.channel}
		switch old := t.channels[k]; {
		case !ok:
		case old != nil && old.peer == c.peer:
			old.candidate = c.addr
			ans.intro = old
		case old != nil || len(t.channels) >= maxIntroductions:
			ok = false
		default:
			ans.intro = &channelInfo{key: k, via: l.peer, peer: c.peer, candidate: c.addr, born: now}
			t.channels[k] = ans.intro
		}
	}
	t.mu.Unlock()
	if !ok {
		n.stats.dropRefused.Add(1)
		return
	}
	if a != nil {
		select {
		case a.answer <- ans:
		default:
		}
	}
}

// handleRelayed takes a relayed packet: one for this node from a rendezvous that introduced it, or
// one this node forwards as a rendezvous.
func (n *Node) handleRelayed(r *reader, pkt []byte, from netip.AddrPort) {
	ch := binary.BigEndian.Uint32(pkt[4:8])
	if n.trav.channel(ch, from) != nil {
		inner, rt := pkt[relayHeaderLen:], route{addr: from, channel: ch}
		switch k := classify(inner); k {
		case kindTransport:
			n.receiveTransport(r, inner, rt)
		case kindInitiation, kindResponse:
			n.queueHandshake(r, k, inner, rt)
		case kindCookieReply:
			n.receiveCookieReply(inner, rt)
		default:
			n.stats.countMalformed(inner)
		}
		return
	}
	if n.srv != nil {
		n.srv.forward(pkt, from, ch)
		return
	}
	n.stats.dropRelay.Add(1)
}

// putRelayHeader writes a relayed packet's header into b[:relayHeaderLen].
func putRelayHeader(b []byte, channel uint32) {
	_ = b[relayHeaderLen-1]
	b[0], b[1], b[2], b[3] = typeRelayed, 0, 0, 0
	binary.BigEndian.PutUint32(b[4:8], channel)
}
