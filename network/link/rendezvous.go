package link

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"go.uber.org/zap"
)

// RendezvousConfig makes a node a rendezvous: nodes behind NATs register with it, it introduces their
// peers to them, and it forwards the sealed link packets of pairs whose NATs cannot be punched. It
// reads none of them: a relayed packet is a link packet between the two nodes, under their keys. Zero
// fields take the defaults.
type RendezvousConfig struct {
	// MaxRegistrations bounds the nodes registered at once (default 4,096).
	MaxRegistrations int
	// MaxPairs bounds the pairs of channels kept at once (default 8,192), and MaxPairsPerPeer those any
	// one node takes part in (default 64).
	MaxPairs, MaxPairsPerPeer int
	// ChannelRate is how many bytes per second one channel (one direction of a pair) may carry, with
	// bursts of a tenth of a second's worth (default 8 MiB/s, 64 Mbit/s); TotalRate bounds all channels
	// together (default 64 MiB/s). Packets over either are dropped and counted.
	ChannelRate, TotalRate int
	// ChannelIdle is how long a pair may carry nothing before it is dropped (default 2 min).
	ChannelIdle time.Duration
}

func (c RendezvousConfig) withDefaults() RendezvousConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxRegistrations, 4096)
	def(&c.MaxPairs, 8192)
	def(&c.MaxPairsPerPeer, 64)
	def(&c.ChannelRate, 8<<20)
	def(&c.TotalRate, 64<<20)
	if c.ChannelIdle <= 0 {
		c.ChannelIdle = 2 * time.Minute
	}
	return c
}

// Registered is a node registered with this rendezvous.
type Registered struct {
	Key  keys.StaticPublic
	Addr netip.AddrPort // where its link to this node comes from: its NAT's public mapping
	Tag  []byte
}

// rendezvousServer is a node's side of NAT traversal as a rendezvous.
type rendezvousServer struct {
	n     *Node
	cfg   RendezvousConfig
	total byteBucket

	mu         sync.RWMutex
	registered map[keys.StaticPublic]*registration
	pairs      map[[2]keys.StaticPublic]*pair // by (asker, registered)
	perPeer    map[keys.StaticPublic]int
	channels   map[uint32]*serverChannel
}

type registration struct {
	link *Link
	tag  []byte
}

type pair struct {
	key  [2]keys.StaticPublic
	a, b *serverChannel // a carries the asker's packets, b the registered node's
}

// serverChannel is one direction of a pair: packets from src's address on id go to dst on dstChannel.
type serverChannel struct {
	id, dstChannel uint32
	src, dst       *Link
	pair           *pair
	used           atomic.Int64 // node clock, ns
	rate           byteBucket
}

func newRendezvousServer(n *Node, cfg RendezvousConfig) *rendezvousServer {
	cfg = cfg.withDefaults()
	s := &rendezvousServer{
		n:          n,
		cfg:        cfg,
		registered: make(map[keys.StaticPublic]*registration),
		pairs:      make(map[[2]keys.StaticPublic]*pair),
		perPeer:    make(map[keys.StaticPublic]int),
		channels:   make(map[uint32]*serverChannel),
	}
	s.total.init(cfg.TotalRate)
	return s
}

// Registered lists the nodes registered with this node as a rendezvous (none if it is not one).
func (n *Node) Registered() []Registered {
	s := n.srv
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Registered, 0, len(s.registered))
	for k, r := range s.registered {
		out = append(out, Registered{Key: k, Addr: r.link.RemoteAddr(), Tag: bytes.Clone(r.tag)})
	}
	return out
}

func (s *rendezvousServer) register(l *Link, tag []byte) {
	s.mu.Lock()
	_, again := s.registered[l.peer]
	full := !again && len(s.registered) >= s.cfg.MaxRegistrations
	if !full {
		s.registered[l.peer] = &registration{link: l, tag: bytes.Clone(tag)}
	}
	s.mu.Unlock()
	if full {
		_ = l.sendControl(&control{typ: ctlRefused, what: ctlRegister, reason: refusedFull})
		return
	}
	_ = l.sendControl(&control{typ: ctlRegistered})
}

// connect introduces the asker on l to a registered peer, making their pair of channels unless they
// have one (an asker repeating itself gets the same channels).
func (s *rendezvousServer) connect(l *Link, peer keys.StaticPublic) {
	refuse := func(reason byte) {
		_ = l.sendControl(&control{typ: ctlRefused, what: ctlConnect, peer: peer, reason: reason})
	}
	if peer == l.peer {
		refuse(refusedSelf)
		return
	}
	now := s.n.clock()
	s.mu.Lock()
	reg := s.registered[peer]
	if reg == nil || reg.link.closed.Load() {
		s.mu.Unlock()
		refuse(refusedUnknownPeer)
		return
	}
	key := [2]keys.StaticPublic{l.peer, peer}
	p := s.pairs[key]
	if p != nil && (p.a.src != l || p.b.src != reg.link) {
		s.dropPairLocked(p) // made over links since replaced
		p = nil
	}
	if p == nil {
		if len(s.pairs) >= s.cfg.MaxPairs || s.perPeer[l.peer] >= s.cfg.MaxPairsPerPeer || s.perPeer[peer] >= s.cfg.MaxPairsPerPeer {
			s.mu.Unlock()
			refuse(refusedFull)
			return
		}
		p = &pair{key: key}
		p.a = &serverChannel{id: s.newChannelLocked(), src: l, dst: reg.link, pair: p}
		s.channels[p.a.id] = p.a
		p.b = &serverChannel{id: s.newChannelLocked(), src: reg.link, dst: l, pair: p}
		s.channels[p.b.id] = p.b
		p.a.dstChannel, p.b.dstChannel = p.b.id, p.a.id
		p.a.rate.init(s.cfg.ChannelRate)
		p.b.rate.init(s.cfg.ChannelRate)
		s.pairs[key] = p
		s.perPeer[l.peer]++
		s.perPeer[peer]++
	}
	p.a.used.Store(int64(now))
	p.b.used.Store(int64(now))
	s.mu.Unlock()
	_ = reg.link.sendControl(&control{typ: ctlIntro, peer: l.peer, addr: l.RemoteAddr(), channel: p.b.id})
	_ = l.sendControl(&control{typ: ctlIntro, peer: peer, addr: reg.link.RemoteAddr(), channel: p.a.id})
	s.n.log.Debug("introduced a pair", zap.Stringer("asker", l.RemoteAddr()), zap.Stringer("registered", reg.link.RemoteAddr()))
}

// newChannelLocked returns an unused channel id.
func (s *rendezvousServer) newChannelLocked() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		id := binary.BigEndian.Uint32(b[:])
		if _, used := s.channels[id]; validChannel(id) && !used {
			return id
		}
	}
}

func (s *rendezvousServer) dropPairLocked(p *pair) {
	if s.pairs[p.key] != p {
		return
	}
	delete(s.pairs, p.key)
	delete(s.channels, p.a.id)
	delete(s.channels, p.b.id)
	for _, k := range p.key {
		if s.perPeer[k]--; s.perPeer[k] <= 0 {
			delete(s.perPeer, k)
		}
	}
}

// forward passes a relayed packet on to the other node of its pair, rewriting only the channel. The
// packet must come from the address the channel's node links from, so nobody else can spend its rate.
func (s *rendezvousServer) forward(pkt []byte, from netip.AddrPort, id uint32) {
	n := s.n
	s.mu.RLock()
	c := s.channels[id]
	s.mu.RUnlock()
	if c == nil || c.src.RemoteAddr() != from || c.src.closed.Load() || c.dst.closed.Load() {
		n.stats.dropRelay.Add(1)
		return
	}
	now := n.clock()
	if !c.rate.take(len(pkt), now) || !s.total.take(len(pkt), now) {
		n.stats.dropRelayLimited.Add(1)
		return
	}
	c.used.Store(int64(now))
	binary.BigEndian.PutUint32(pkt[4:8], c.dstChannel)
	if err := n.write(pkt, c.dst.RemoteAddr()); err != nil {
		return
	}
	n.stats.relayForwarded.Add(1)
	n.stats.relayForwardedBytes.Add(uint64(len(pkt)))
}

// linkClosed drops l's registration and every pair it takes part in.
func (s *rendezvousServer) linkClosed(l *Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.registered[l.peer]; r != nil && r.link == l {
		delete(s.registered, l.peer)
	}
	for _, p := range s.pairs {
		if p.a.src == l || p.b.src == l {
			s.dropPairLocked(p)
		}
	}
}

// expire drops pairs that carried nothing for ChannelIdle.
func (s *rendezvousServer) expire(now time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pairs {
		if now-time.Duration(max(p.a.used.Load(), p.b.used.Load())) >= s.cfg.ChannelIdle {
			s.dropPairLocked(p)
		}
	}
}

// byteBucket is a token bucket of bytes: rate per second, holding a tenth of a second's worth.
type byteBucket struct {
	mu     sync.Mutex
	rate   int64
	tokens int64
	last   time.Duration
}

func (b *byteBucket) init(rate int) {
	b.rate = int64(rate)
	b.tokens = b.rate / 10
}

func (b *byteBucket) take(size int, now time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now - b.last; elapsed > 0 {
		b.tokens = min(b.rate/10, b.tokens+int64(float64(b.rate)*elapsed.Seconds()))
		b.last = now
	}
	if b.tokens < int64(size) {
		return false
	}
	b.tokens -= int64(size)
	return true
}
