package clientd

import (
	"net/netip"
	"strings"
	"testing"
)

// TestTunnelIPv6Address: the tunnel has an IPv6 address by default (a ULA), "" turns it off, a bad
// one is refused, and a TUN MTU below IPv6's 1280 leaves the tunnel without one.
func TestTunnelIPv6Address(t *testing.T) {
	c := DefaultConfig()
	if a := c.addr6(); !a.IsValid() || !a.Addr().Is6() || !netip.MustParsePrefix("fc00::/7").Contains(a.Addr()) {
		t.Fatalf("default tunnel IPv6 address %v, want a ULA", a)
	}
	c.TUN.Address6 = ""
	if err := c.Validate(); err != nil || c.addr6().IsValid() {
		t.Fatalf("no IPv6 address: %v, %v", err, c.addr6())
	}
	for _, bad := range []string{"10.99.0.3/32", "::ffff:10.99.0.3/128", "fd00::2", "nonsense"} {
		c := DefaultConfig()
		c.TUN.Address6 = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tun.address6") {
			t.Errorf("address6 %q: %v", bad, err)
		}
	}
	c = DefaultConfig()
	c.TUN.MTU = 1279
	if err := c.Validate(); err != nil || c.addr6().IsValid() {
		t.Fatalf("MTU 1279: %v, IPv6 address %v", err, c.addr6())
	}
}
