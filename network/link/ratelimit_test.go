package link

import (
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiterPerSource(t *testing.T) {
	r := newRateLimiter(defaultLimits, 0)
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	allowed := func(src netip.Addr, now time.Duration, n int) int {
		got := 0
		for range n {
			if r.allow(src, now) {
				got++
			}
		}
		return got
	}
	if got := allowed(a, 0, 100); got != 40 {
		t.Fatalf("burst: %d allowed, want 40", got)
	}
	if got := allowed(b, 0, 100); got != 40 {
		t.Fatalf("another source is held by the first one's bucket: %d allowed", got)
	}
	if got := allowed(a, time.Second, 100); got != 20 {
		t.Fatalf("after a second: %d allowed, want 20", got)
	}
	// An IPv6 /64 is one source.
	x, y := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	if got := allowed(x, 0, 30) + allowed(y, 0, 30); got != 40 {
		t.Fatalf("one /64: %d allowed, want 40", got)
	}
	r.collect(10 * time.Second)
	if len(r.sources) != 0 {
		t.Fatalf("%d full buckets kept after collection", len(r.sources))
	}
}

func TestRateLimiterGlobal(t *testing.T) {
	r := newRateLimiter(limits{perSourceRate: 20, perSourceBurst: 40, globalRate: 100, globalBurst: 100}, 0)
	got := 0
	for i := range 1000 {
		if r.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 0) {
			got++
		}
	}
	if got != 100 {
		t.Fatalf("many sources: %d allowed, want the global burst of 100", got)
	}
}
