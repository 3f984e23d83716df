package link

import (
	"net/netip"
	"sync"
	"time"
)

// maxLimiterSources bounds the per-source table. A flood from more (spoofed) sources than this is
// still held by the global bucket; the table cannot grow without bound.
const maxLimiterSources = 1 << 16

// rateLimiter holds handshake messages to a rate per source and a rate overall, with token buckets. It
// runs before any DH, on the reading goroutines, so it must be cheap: one short critical section and no
// allocation except for a source's first packet.
type rateLimiter struct {
	mu        sync.Mutex
	perSource bucketShape
	global    bucketShape
	all       bucket
	sources   map[netip.Addr]bucket
	lastGC    time.Duration
}

// bucketShape is a token bucket's rate and depth, both kept as time: a token costs `cost` of
// accumulated credit, and credit is capped at `depth`. Keeping credit in nanoseconds makes refilling
// one subtraction.
type bucketShape struct {
	cost, depth time.Duration
}

func shape(rate, burst int) bucketShape {
	cost := time.Second / time.Duration(rate)
	return bucketShape{cost: cost, depth: cost * time.Duration(burst)}
}

type bucket struct {
	credit time.Duration
	last   time.Duration
}

// take refills b for the time since its last use and spends one token if there is one.
func (b *bucket) take(s bucketShape, now time.Duration) bool {
	b.credit = min(s.depth, b.credit+max(0, now-b.last))
	b.last = now
	if b.credit < s.cost {
		return false
	}
	b.credit -= s.cost
	return true
}

func newRateLimiter(l limits, now time.Duration) *rateLimiter {
	r := &rateLimiter{
		perSource: shape(l.perSourceRate, l.perSourceBurst),
		global:    shape(l.globalRate, l.globalBurst),
		sources:   make(map[netip.Addr]bucket),
		lastGC:    now,
	}
	r.all = bucket{credit: r.global.depth, last: now}
	return r
}

// sourceKey groups addresses the way one sender holds them: one IPv4 address, or one IPv6 /64 (a
// host typically has a whole /64 and could otherwise rotate through it).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow reports whether a handshake message from src may be processed now. The source's bucket is
// checked first, so one flooding source spends only its own tokens and not the global ones.
func (r *rateLimiter) allow(src netip.Addr, now time.Duration) bool {
	key := sourceKey(src)
	r.mu.Lock()
	defer r.mu.Unlock()
	b, known := r.sources[key]
	if !known {
		b = bucket{credit: r.perSource.depth, last: now}
	}
	if !b.take(r.perSource, now) {
		r.sources[key] = b
		return false
	}
	if known || len(r.sources) < maxLimiterSources {
		r.sources[key] = b
	}
	return r.all.take(r.global, now)
}

// collect forgets sources whose buckets have refilled completely, about once a second: they are
// indistinguishable from sources never seen.
func (r *rateLimiter) collect(now time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now-r.lastGC < time.Second {
		return
	}
	r.lastGC = now
	for k, b := range r.sources {
		if b.credit+(now-b.last) >= r.perSource.depth {
			delete(r.sources, k)
		}
	}
}
