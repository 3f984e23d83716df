package path

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// testID returns a distinct identity for each i.
func testID(i int) keys.IdentityPublic {
	var id keys.IdentityPublic
	id[0], id[1], id[2] = 0xA5, byte(i>>8), byte(i)
	return id
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustSummary(t testing.TB, s string) exitports.Summary {
	t.Helper()
	sum, err := exitports.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// rel builds a relay numbered i at addr ("a.b.c.d" or an IPv6 address).
func rel(i int, addr string, flags netdir.Flags, weight uint64) netdir.Relay {
	return netdir.Relay{
		Identity: testID(i),
		Name:     fmt.Sprintf("r%d", i),
		Addr:     netip.AddrPortFrom(netip.MustParseAddr(addr), 7000),
		Weight:   weight,
		Flags:    flags,
	}
}

// ipv4 returns an address in its own /16 for each i < 65536.
func ipv4(i int) string { return fmt.Sprintf("%d.%d.0.1", 11+i/256, i%256) }

// family makes the relays at the given indexes one declared (mutual) family.
func family(rs []netdir.Relay, idx ...int) {
	for _, i := range idx {
		for _, j := range idx {
			if i != j {
				rs[i].Family = append(rs[i].Family, rs[j].Identity)
			}
		}
	}
}

func newSelector(t testing.TB, relays []netdir.Relay, g *GuardSet, seed uint64, now func() time.Time) *Selector {
	t.Helper()
	if now == nil {
		now = newClock().Now
	}
	s, err := New(Config{Dir: dir(t, relays), Guards: g, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dir is the NetDir of relays.
func dir(t testing.TB, relays []netdir.Relay) *netdir.NetDir {
	t.Helper()
	d, err := netdir.FromList(relays)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var testSummaries = []string{
	"tcp=80,443 udp=53",
	"tcp=1-65535 udp=1-65535",
	"tcp=22,80,443,6000-7000 udp=none",
	"tcp=none udp=53,443",
	"tcp=25,80 udp=none",
}

var testCountries = []struct{ country, region string }{
	{"DE", "eu"}, {"NL", "eu"}, {"SE", "eu"}, {"US", "na"}, {"CA", "na"}, {"JP", "asia"},
}

// randomConsensus returns about n relays crowded into few /16s (a handful of hosting providers hold
// most of them) and /32s, with declared families (mostly mutual, some one-sided), a share of them
// down or degraded, and varied exit policies, weights and locations.
func randomConsensus(t testing.TB, rng *rand.Rand, n int) []netdir.Relay {
	t.Helper()
	v4 := []string{"45.10", "45.11", "51.15", "88.99", "95.216", "104.244", "138.201", "185.220", "192.42", "193.11"}
	v6 := []string{"2a01:4f8", "2a03:b0c0", "2001:67c"}
	rs := make([]netdir.Relay, n)
	for i := range rs {
		var addr string
		if rng.IntN(6) == 0 {
			addr = fmt.Sprintf("%s:%x::%x", v6[rng.IntN(len(v6))], rng.IntN(0x10000), 1+rng.IntN(0xfff))
		} else if rng.IntN(4) == 0 { // the long tail: a /16 of its own, or nearly
			addr = fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(222), rng.IntN(8), rng.IntN(256), 1+rng.IntN(254))
		} else {
			addr = fmt.Sprintf("%s.%d.%d", v4[rng.IntN(len(v4))], rng.IntN(256), 1+rng.IntN(254))
		}
		r := rel(i, addr, 0, 0)
		if rng.IntN(20) != 0 {
			r.Flags |= netdir.Running
		}
		if rng.IntN(10) == 0 {
			r.Flags |= netdir.Degraded
		}
		if rng.IntN(3) == 0 {
			r.Flags |= netdir.Guard | netdir.Stable | netdir.Fast
		}
		if rng.IntN(4) == 0 {
			r.Flags |= netdir.Exit
			r.Exit = mustSummary(t, testSummaries[rng.IntN(len(testSummaries))])
		}
		if rng.IntN(8) != 0 {
			r.Weight = 1 + rng.Uint64N(1_000_000)
		}
		loc := testCountries[rng.IntN(len(testCountries))]
		r.Country, r.Region = loc.country, loc.region
		rs[i] = r
	}
	for range n / 8 { // families of 2 to 5, possibly overlapping
		size := 2 + rng.IntN(4)
		idx := make([]int, size)
		for k := range idx {
			idx[k] = rng.IntN(n)
		}
		family(rs, idx...)
	}
	for range n / 10 { // one-sided claims, which make no family
		a, b := rng.IntN(n), rng.IntN(n)
		rs[a].Family = append(rs[a].Family, rs[b].Identity)
	}
	return rs
}

// sameSubnet is the /16 (/32) rule written out independently of the package.
func sameSubnet(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	if a.Is4() != b.Is4() {
		return false
	}
	x, y := a.As16(), b.As16()
	if a.Is4() {
		return x[12] == y[12] && x[13] == y[13]
	}
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3]
}

func lists(r netdir.Relay, id keys.IdentityPublic) bool {
	for _, f := range r.Family {
		if f == id {
			return true
		}
	}
	return false
}

// isErr reports whether err is of the kind and says want.
func isErr(err, kind error, want string) bool {
	return errors.Is(err, kind) && strings.Contains(err.Error(), want)
}

// chiSquare returns Σ (observed − expected)² / expected.
func chiSquare(observed []int, expected []float64) float64 {
	var x float64
	for i, o := range observed {
		d := float64(o) - expected[i]
		x += d * d / expected[i]
	}
	return x
}
