package link

import (
	"net/netip"
	"sync"
	"time"
)

// maxLimiterSources bounds the per-source table. A flood from more sources than this is still held by
// the proven budget; the table cannot grow without bound.
const maxLimiterSources = 1 << 16

// rateLimiter holds handshake messages to budgets, token buckets that run before any DH, on the
// reading goroutines, so they must be cheap: one short critical section and no allocation except for
// a source's first packet. There are three budgets, so that one kind of traffic cannot spend
// another's (receive.go decides which a message takes):
//
//   - open: initiations that have not proven their source address, while there is no load. A source
//     address anyone may forge is no key for a per-source limit, so there is none here: when the
//     budget runs out the node is under load and such initiations get cookie replies instead.
//   - proven: initiations whose mac2 proves their source address, and responses (which must name a
//     pending handshake's random index); each source has its own bucket too.
//   - rekeys: initiations that replace a live link's session; each link has its own bucket.
type rateLimiter struct {
	mu        sync.Mutex
	perSource bucketShape
	global    bucketShape
	perLink   bucketShape
	open      bucket
	proven    bucket
	rekeys    bucket
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
		perLink:   shape(l.perLinkRekeyRate, l.perLinkRekeyBurst),
		sources:   make(map[netip.Addr]bucket),
		lastGC:    now,
	}
	full := bucket{credit: r.global.depth, last: now}
	r.open, r.proven, r.rekeys = full, full, full
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

// allowOpen reports whether an initiation that has not proven its source may be processed now.
func (r *rateLimiter) allowOpen(now time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open.take(r.global, now)
}

// allowRekey reports whether an initiation that rekeys l may be processed now, on l's own budget.
func (r *rateLimiter) allowRekey(l *Link, now time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return l.rekeyBudget.take(r.perLink, now) && r.rekeys.take(r.global, now)
}

// linkBudget returns a new link's rekey budget, full.
func (r *rateLimiter) linkBudget(now time.Duration) bucket {
	return bucket{credit: r.perLink.depth, last: now}
}

// allow reports whether a handshake message from the proven source src may be processed now. The
// source's bucket is checked first, so one flooding source spends only its own tokens and not the
// shared ones.
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
	return r.proven.take(r.global, now)
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
