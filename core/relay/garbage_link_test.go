package relay

import (
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Datagrams that are no link packet and that neither the relay (whois) nor its OnOther (an exit
// node's STUN prober) wants are garbage drops of the relay's link layer, which every node's metrics
// show: a flood of them at a relay with a STUN prober used to be passed on and counted nowhere.
func TestUnwantedDatagramsAreLinkGarbage(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.GenerateIdentity(rand.Reader)
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	r, err := New(Config{Conn: conn, Identity: id, LinkKey: lk, OnionKeys: []*keys.Static{ok}, NetworkID: whoisNetwork,
		OnOther: func([]byte, netip.AddrPort) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteToUDPAddrPort([]byte("junk one"), r.Info().Addr)
	c.WriteToUDPAddrPort([]byte("junk two"), r.Info().Addr)
	c.WriteToUDPAddrPort(whois.Request([whois.NonceLen]byte{1}), r.Info().Addr)
	deadline := time.Now().Add(5 * time.Second)
	for s := r.LinkStats(); s.DropOther+s.OtherIn < 3 && time.Now().Before(deadline); s = r.LinkStats() {
		time.Sleep(time.Millisecond)
	}
	if s := r.LinkStats(); s.DropOther != 2 || s.OtherIn != 1 {
		t.Fatalf("link: %d garbage drops and %d datagrams taken, want 2 and 1 (the whois)", s.DropOther, s.OtherIn)
	}
}
