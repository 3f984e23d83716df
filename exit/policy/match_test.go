package policy

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// The compiled masks must agree with netip on every family and length; a mistake at a boundary
// (/0, /32, /64, /128) would open or close a whole range.
func TestPrefixBitsAgreesWithNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(is4 bool) netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if is4 {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16(b).Unmap()
	}
	for range 20000 {
		pIs4, aIs4 := rng.IntN(2) == 0, rng.IntN(2) == 0
		base := randAddr(pIs4)
		p := netip.PrefixFrom(base, rng.IntN(base.BitLen()+1)).Masked()
		a := randAddr(aIs4)
		if rng.IntN(2) == 0 && aIs4 == pIs4 {
			a = base // near the prefix, so that Contains is often true
		}
		pb := prefixBitsOf(p)
		if got, want := pb.contains(bitsOf(a), a.Is4()), p.Contains(a); got != want {
			t.Fatalf("%s contains %s: got %v, netip says %v", p, a, got, want)
		}
	}
	for _, c := range []struct {
		p, a string
		want bool
	}{
		{"::/0", "1.2.3.4", false},
		{"0.0.0.0/0", "::1", false},
		{"0.0.0.0/0", "::ffff:1.2.3.4", false}, // Decide unmaps first; the mask keeps families apart
		{"::/0", "::ffff:1.2.3.4", true},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8::/64", "2001:db8:0:1::", false},
		{"10.0.0.0/8", "10.255.255.255", true},
		{"10.0.0.0/8", "11.0.0.0", false},
		{"1.2.3.4/32", "1.2.3.4", true},
		{"1.2.3.4/32", "1.2.3.5", false},
	} {
		pb := prefixBitsOf(netip.MustParsePrefix(c.p))
		a := netip.MustParseAddr(c.a)
		if got := pb.contains(bitsOf(a), a.Is4()); got != c.want {
			t.Errorf("%s contains %s = %v, want %v", c.p, c.a, got, c.want)
		}
	}
}
