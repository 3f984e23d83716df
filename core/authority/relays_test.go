package authority

import (
	"crypto/rand"
	"net/netip"
	"slices"
	"testing"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// A probe circuit goes to the address the relay was found at, if its descriptor lists it, and through
// the relay's first rendezvous when it is behind a NAT.
func TestProbeInfo(t *testing.T) {
	id, _ := keys.GenerateIdentity(rand.Reader)
	rv := []descriptor.Rendezvous{
		{LinkKey: keys.StaticPublic{1}, Addr: netip.MustParseAddrPort("203.0.113.1:7000")},
		{LinkKey: keys.StaticPublic{2}, Addr: netip.MustParseAddrPort("203.0.113.2:7000")},
	}
	for _, c := range []struct {
		name       string
		found      netip.AddrPort
		rendezvous []descriptor.Rendezvous
		addr       netip.AddrPort
	}{
		{"found at its second address", addrB, nil, addrB},
		{"found at an address it no longer lists", netip.MustParseAddrPort("192.0.2.1:7000"), nil, addrA},
		{"behind a NAT", addrB, rv, addrB},
	} {
		d, err := descriptor.Parse(signedBy(t, id, 1, func(d *descriptor.Descriptor) { d.Rendezvous = c.rendezvous }))
		if err != nil {
			t.Fatal(err)
		}
		s := &relayState{desc: d}
		s.Addr = c.found
		got := s.info()
		if got.Identity != d.Identity || got.Onion != d.OnionKey || got.LinkKey != d.LinkKey || got.Addr != c.addr || !slices.Equal(got.Rendezvous, c.rendezvous) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}
