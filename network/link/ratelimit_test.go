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
	l := defaultLimits
	l.globalRate, l.globalBurst = 100, 100
	r := newRateLimiter(l, 0)
	got := 0
	for i := range 1000 {
		if r.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 0) {
			got++
		}
	}
	if got != 100 {
		t.Fatalf("many sources: %d allowed, want the proven budget's burst of 100", got)
	}
	// The open budget is apart: proven sources did not spend it.
	open := 0
	for range 1000 {
		if r.allowOpen(0) {
			open++
		}
	}
	if open != 100 {
		t.Fatalf("open budget: %d allowed, want its burst of 100", open)
	}
}
