package relay

import (
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/core/whois"
)

// New registers everything the relay takes from its socket on the transport it is handed, before
// the transport's owner starts it: the link handlers always, the whois handler with a network id. A
// relay that closes closes its transport.
func TestNewRegistersItsHandlersOnTheTransport(t *testing.T) {
	for _, withWhois := range []bool{false, true} {
		tr := newNoSocket()
		cfg := Config{Node: tr}
		if withWhois {
			cfg.NetworkID = whoisNetwork
		}
		r := newRelay(t, cfg)
		tr.mu.Lock()
		h, other := tr.handlers, tr.other
		tr.mu.Unlock()
		if h.OnMessage == nil || h.OnLinkDown == nil {
			t.Fatalf("whois %v: link handlers not set: %+v", withWhois, h)
		}
		if withWhois != (len(other) == 1) || len(other) > 1 {
			t.Fatalf("whois %v: %d handlers of other datagrams", withWhois, len(other))
		}
		if withWhois {
			from := netip.MustParseAddrPort("192.0.2.9:9")
			if other[0]([]byte("not whois"), from) {
				t.Fatal("the whois handler took a datagram that is not whois")
			}
			if !other[0](whois.Request([whois.NonceLen]byte{1}), from) {
				t.Fatal("the whois handler did not take a whois request")
			}
		}
		r.Close()
		tr.mu.Lock()
		closed := tr.closed
		tr.mu.Unlock()
		if !closed {
			t.Fatalf("whois %v: the relay's Close left its transport open", withWhois)
		}
	}
}
