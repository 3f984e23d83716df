package relay

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/network/link"
)

// Datagrams that are no link packet and that neither the relay (whois) nor another handler of its
// socket (an exit node's STUN prober) wants are garbage drops of the relay's link layer, which every node's metrics
// show: a flood of them at a relay with a STUN prober used to be passed on and counted nowhere.
func TestUnwantedDatagramsAreLinkGarbage(t *testing.T) {
	r := startRelay(t, link.Config{}, Config{NetworkID: whoisNetwork}, func([]byte, netip.AddrPort) bool { return false })
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
