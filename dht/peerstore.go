package dht

import (
	"container/list"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// PeerStoreConfig bounds the peers a node keeps for others' announce_peer queries. Zero fields take
// the defaults.
type PeerStoreConfig struct {
	// MaxPerInfohash bounds the peers kept under one infohash (default 1000); the oldest go first.
	MaxPerInfohash int
	// MaxTotal bounds the peers kept in all (default 50000); the oldest go first.
	MaxTotal int
	// TTL is how long an announce is kept (default 30 minutes, BEP 5's token lifetime: peers
	// re-announce at least that often).
	TTL time.Duration
	// MaxReply bounds the peers one get_peers answer carries (default 50, which keeps an answer of
	// IPv6 peers within one unfragmented datagram); larger swarms are sampled at random, so that
	// repeated lookups see all of them.
	MaxReply int
}

func (c PeerStoreConfig) withDefaults() PeerStoreConfig {
	if c.MaxPerInfohash == 0 {
		c.MaxPerInfohash = 1000
	}
	if c.MaxTotal == 0 {
		c.MaxTotal = 50000
	}
	if c.TTL == 0 {
		c.TTL = 30 * time.Minute
	}
	if c.MaxReply == 0 {
		c.MaxReply = 50
	}
	return c
}

// peerStore keeps the peers announced to us, keyed by infohash and ip:port. It replaces the library's
// in-memory store, which in v2.23.0 keys peers by IP alone and decodes that key as ip:port, so that
// lookups return nothing (and peers sharing an IP would overwrite each other).
type peerStore struct {
	cfg PeerStoreConfig
	now func() time.Time

	mu     sync.Mutex
	swarms map[Infohash]*swarm
	byAge  list.List // every *peerEntry, least recently announced first
}

type swarm struct {
	peers map[netip.AddrPort]*peerEntry
	byAge list.List // this swarm's *peerEntry, least recently announced first
}

type peerEntry struct {
	ih       Infohash
	addr     netip.AddrPort
	at       time.Time
	inAll    *list.Element
	inSwarm  *list.Element
	swarmPtr *swarm
}

var _ peer_store.Interface = (*peerStore)(nil)

func newPeerStore(cfg PeerStoreConfig, now func() time.Time) *peerStore {
	return &peerStore{cfg: cfg.withDefaults(), now: now, swarms: make(map[Infohash]*swarm)}
}

// AddPeer records that na announced itself under ih. The library calls it for every announce_peer
// with a valid token.
func (ps *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	addr, ok := peerAddr(na)
	if !ok {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	ps.expire(now)
	key := Infohash(ih)
	sw := ps.swarms[key]
	if sw == nil {
		sw = &swarm{peers: make(map[netip.AddrPort]*peerEntry)}
		ps.swarms[key] = sw
	}
	if e := sw.peers[addr]; e != nil {
		e.at = now
		ps.byAge.MoveToBack(e.inAll)
		sw.byAge.MoveToBack(e.inSwarm)
		return
	}
	if len(sw.peers) >= ps.cfg.MaxPerInfohash {
		ps.remove(sw.byAge.Front().Value.(*peerEntry))
	}
	if ps.byAge.Len() >= ps.cfg.MaxTotal {
		ps.remove(ps.byAge.Front().Value.(*peerEntry))
	}
	e := &peerEntry{ih: key, addr: addr, at: now, swarmPtr: sw}
	e.inAll = ps.byAge.PushBack(e)
	e.inSwarm = sw.byAge.PushBack(e)
	sw.peers[addr] = e
	// remove may have dropped the swarm while it was empty of others; put it back.
	ps.swarms[key] = sw
}

// GetPeers returns up to MaxReply live peers announced under ih, chosen at random if there are more.
func (ps *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	return ps.sample(Infohash(ih), ps.cfg.MaxReply)
}

// all returns every live peer announced under ih.
func (ps *peerStore) all(ih Infohash) []krpc.NodeAddr { return ps.sample(ih, -1) }

// sample returns up to limit live peers under ih (all of them if limit < 0), chosen at random.
func (ps *peerStore) sample(ih Infohash, limit int) []krpc.NodeAddr {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire(ps.now())
	sw := ps.swarms[ih]
	if sw == nil {
		return nil
	}
	addrs := make([]netip.AddrPort, 0, len(sw.peers))
	for a := range sw.peers {
		addrs = append(addrs, a)
	}
	if limit >= 0 && len(addrs) > limit {
		for i := range limit {
			j := i + rand.IntN(len(addrs)-i)
			addrs[i], addrs[j] = addrs[j], addrs[i]
		}
		addrs = addrs[:limit]
	}
	out := make([]krpc.NodeAddr, len(addrs))
	for i, a := range addrs {
		out[i] = krpc.NodeAddr{IP: a.Addr().AsSlice(), Port: int(a.Port())}
	}
	return out
}

// Len returns how many peers are stored under all infohashes.
func (ps *peerStore) Len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.expire(ps.now())
	return ps.byAge.Len()
}

// expire drops the announces older than TTL, oldest first.
func (ps *peerStore) expire(now time.Time) {
	for f := ps.byAge.Front(); f != nil; f = ps.byAge.Front() {
		e := f.Value.(*peerEntry)
		if now.Sub(e.at) < ps.cfg.TTL {
			return
		}
		ps.remove(e)
	}
}

func (ps *peerStore) remove(e *peerEntry) {
	ps.byAge.Remove(e.inAll)
	e.swarmPtr.byAge.Remove(e.inSwarm)
	delete(e.swarmPtr.peers, e.addr)
	if len(e.swarmPtr.peers) == 0 {
		delete(ps.swarms, e.ih)
	}
}

// peerAddr converts an announced address, rejecting those no one could connect to.
func peerAddr(na krpc.NodeAddr) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok || na.Port <= 0 || na.Port > 0xffff {
		return netip.AddrPort{}, false
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(na.Port)), true
}
