package nat

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func mustPool(t *testing.T, prefix string, reserved ...string) *Pool {
	t.Helper()
	var rs []netip.Addr
	for _, r := range reserved {
		rs = append(rs, netip.MustParseAddr(r))
	}
	p, err := NewPool(netip.MustParsePrefix(prefix), rs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolAllocateLookupRelease(t *testing.T) {
	p := mustPool(t, "10.8.0.1/16", "10.8.0.1")
	if p.Prefix() != netip.MustParsePrefix("10.8.0.0/16") || p.Cap() != 65533 {
		t.Fatalf("prefix %v cap %d", p.Prefix(), p.Cap())
	}
	a, err := p.Allocate(42)
	if err != nil {
		t.Fatal(err)
	}
	if a != netip.MustParseAddr("10.8.0.2") {
		t.Fatalf("first address %v: want 10.8.0.2 (network and reserved skipped)", a)
	}
	if again, _ := p.Allocate(42); again != a {
		t.Fatalf("same session got %v then %v", a, again)
	}
	b, _ := p.Allocate(43)
	if b == a {
		t.Fatal("two sessions share an address")
	}
	if s, ok := p.Lookup(a); !ok || s != 42 {
		t.Fatalf("Lookup(%v) = %d, %v", a, s, ok)
	}
	for _, miss := range []string{"10.8.0.1", "10.8.9.9", "10.9.0.2", "::ffff:10.8.0.2", "2001:db8::1"} {
		if _, ok := p.Lookup(netip.MustParseAddr(miss)); ok {
			t.Errorf("Lookup(%s) found a session", miss)
		}
	}
	if p.Len() != 2 {
		t.Fatalf("Len %d", p.Len())
	}
	p.Release(42)
	p.Release(42)
	p.Release(99)
	if _, ok := p.Lookup(a); ok || p.Len() != 1 {
		t.Fatalf("after Release: lookup ok=%v, Len %d", ok, p.Len())
	}
}

func TestPoolExhaustionAndReuseOrder(t *testing.T) {
	// 10.8.0.0/29: .1-.6 usable, .3 reserved: five addresses.
	p := mustPool(t, "10.8.0.0/29", "10.8.0.3", "10.8.0.0", "10.8.0.7")
	if p.Cap() != 5 {
		t.Fatalf("Cap %d, want 5", p.Cap())
	}
	got := map[uint64]netip.Addr{}
	for s := uint64(1); s <= 5; s++ {
		a, err := p.Allocate(s)
		if err != nil {
			t.Fatal(err)
		}
		if a == netip.MustParseAddr("10.8.0.3") || !p.Prefix().Contains(a) {
			t.Fatalf("handed out %v", a)
		}
		got[s] = a
	}
	if _, err := p.Allocate(6); !errors.Is(err, ErrExhausted) {
		t.Fatalf("sixth allocation: %v", err)
	}
	if a, err := p.Allocate(3); err != nil || a != got[3] {
		t.Fatalf("an existing session must still get its address when full: %v %v", a, err)
	}
	// Released addresses come back oldest release first.
	p.Release(4)
	p.Release(2)
	p.Release(5)
	for s, want := range []netip.Addr{got[4], got[2], got[5]} {
		a, err := p.Allocate(uint64(10 + s))
		if err != nil || a != want {
			t.Fatalf("reuse %d: got %v (%v), want %v", s, a, err, want)
		}
	}
}

func TestPoolPrefersFreshAddresses(t *testing.T) {
	p := mustPool(t, "10.8.0.0/24")
	first, _ := p.Allocate(1)
	p.Release(1)
	second, _ := p.Allocate(2)
	if second == first {
		t.Fatalf("address %v reused at once while fresh ones remain", first)
	}
	// Once every address has been used, the released one comes back.
	for s := uint64(3); p.Len() < p.Cap(); s++ {
		if _, err := p.Allocate(s); err != nil {
			if !errors.Is(err, ErrExhausted) {
				t.Fatal(err)
			}
			break
		}
	}
	if p.Len() != p.Cap() {
		t.Fatalf("Len %d Cap %d", p.Len(), p.Cap())
	}
	if s, ok := p.Lookup(first); !ok || s == 1 {
		t.Fatalf("the released address went to %d, %v", s, ok)
	}
}

func TestNewPoolErrors(t *testing.T) {
	cases := []struct {
		prefix   netip.Prefix
		reserved []netip.Addr
		want     []string
	}{
		{netip.Prefix{}, nil, []string{"not IPv4"}},
		{netip.MustParsePrefix("fd00::/64"), nil, []string{"not IPv4"}},
		{netip.MustParsePrefix("10.0.0.0/31"), nil, []string{"too small"}},
		{netip.MustParsePrefix("10.0.0.0/32"), nil, []string{"too small"}},
		{netip.MustParsePrefix("10.0.0.0/30"), []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}, []string{"no address left"}},
		{netip.MustParsePrefix("10.0.0.0/31"), []netip.Addr{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("::1")}, []string{"too small", "10.9.0.1 is not in", "::1 is not in"}},
	}
	for _, c := range cases {
		_, err := NewPool(c.prefix, c.reserved...)
		if err == nil {
			t.Errorf("NewPool(%v, %v): no error", c.prefix, c.reserved)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewPool(%v, %v): %q lacks %q", c.prefix, c.reserved, err, w)
			}
		}
	}
	if p, err := NewPool(netip.MustParsePrefix("10.0.0.0/30")); err != nil || p.Cap() != 2 {
		t.Fatalf("/30: %v", err)
	}
	if p, err := NewPool(DefaultPrefix); err != nil || p.Cap() != 65534 {
		t.Fatalf("default prefix: %v", err)
	}
}

// Sessions come and go from many goroutines; at every moment an address names one session.
func TestPoolConcurrent(t *testing.T) {
	p := mustPool(t, "10.8.0.0/22")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				s := uint64(g)<<32 | uint64(i%40)
				a, err := p.Allocate(s)
				if err != nil {
					t.Error(err)
					return
				}
				if got, ok := p.Lookup(a); !ok || got != s {
					t.Errorf("Lookup(%v) = %d, %v; want %d", a, got, ok, s)
					return
				}
				if i%3 == 0 {
					p.Release(s)
				}
				_ = p.Len()
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for g := range 8 {
		for i := range 40 {
			s := uint64(g)<<32 | uint64(i)
			a, err := p.Allocate(s)
			if err != nil {
				t.Fatal(err)
			}
			if seen[a] {
				t.Fatalf("address %v held twice", a)
			}
			seen[a] = true
		}
	}
}

func TestPoolLookupDoesNotAllocate(t *testing.T) {
	p := mustPool(t, "10.8.0.0/16")
	a, _ := p.Allocate(1)
	if n := testing.AllocsPerRun(100, func() { p.Lookup(a) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
