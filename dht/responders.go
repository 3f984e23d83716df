package dht

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// responders remembers which addresses answered our queries lately: what BEP 5 calls good nodes, the
// only ones we hand out. An answer counts only from an address we recently asked, which is as much
// as the library itself checks (its transaction ids are a predictable counter).
type responders struct {
	now     func() time.Time
	asking  time.Duration // how long after asking an answer still counts
	maxSize int

	mu        sync.Mutex
	askedAt   map[netip.AddrPort]time.Time
	goodSince map[netip.AddrPort]time.Time
}

// goodFor is BEP 5's window: a node that answered in the last 15 minutes is good.
const goodFor = 15 * time.Minute

func newResponders(now func() time.Time, asking time.Duration) *responders {
	return &responders{
		now:       now,
		asking:    asking,
		maxSize:   8192,
		askedAt:   make(map[netip.AddrPort]time.Time),
		goodSince: make(map[netip.AddrPort]time.Time),
	}
}

// asked records that we sent a query to addr.
func (r *responders) asked(addr net.Addr) {
	ap, ok := udpAddrPort(addr)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.bound(r.askedAt, r.asking, now)
	r.askedAt[ap] = now
}

// answered records a response from addr, which counts if we asked it lately.
func (r *responders) answered(addr net.Addr) {
	ap, ok := udpAddrPort(addr)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if at, ok := r.askedAt[ap]; !ok || now.Sub(at) > r.asking {
		return
	}
	r.bound(r.goodSince, goodFor, now)
	r.goodSince[ap] = now
}

// good reports whether ap answered us in the last 15 minutes.
func (r *responders) good(ap netip.AddrPort) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.goodSince[ap]
	return ok && r.now().Sub(at) < goodFor
}

// bound makes room in m for one more entry: stale entries go, and if none is stale, all do (a
// flood only makes us forget sooner).
func (r *responders) bound(m map[netip.AddrPort]time.Time, ttl time.Duration, now time.Time) {
	if len(m) < r.maxSize {
		return
	}
	for k, at := range m {
		if now.Sub(at) > ttl {
			delete(m, k)
		}
	}
	if len(m) >= r.maxSize {
		clear(m)
	}
}

func udpAddrPort(addr net.Addr) (netip.AddrPort, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
