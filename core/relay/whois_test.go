package relay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/network/link"
)

// whoisNetwork is the network id the whois tests' relays answer for.
var whoisNetwork = [32]byte{1, 2, 3}

// whoisRelay starts a relay on loopback that answers whois for whoisNetwork; rv makes it a rendezvous.
func whoisRelay(t *testing.T, rv *link.RendezvousConfig) *Relay {
	t.Helper()
	return startRelay(t, link.Config{Rendezvous: rv}, Config{NetworkID: whoisNetwork})
}

func TestRelayAnswersWhois(t *testing.T) {
	r := whoisRelay(t, nil)
	id, network := r.cfg.Identity, whoisNetwork
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nonce := [whois.NonceLen]byte{9}
	c.WriteToUDPAddrPort([]byte("\xeeMVWHO1 but not a request"), r.Info().Addr)
	c.WriteToUDPAddrPort([]byte("something else"), r.Info().Addr)
	if _, err := c.WriteToUDPAddrPort(whois.Request(nonce), r.Info().Addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 200)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	gotNet, gotID, err := whois.ParseAnswer(buf[:n], nonce)
	if err != nil || gotNet != network || gotID != id.Public() {
		t.Fatalf("answer %v %v %v", gotNet, gotID, err)
	}
	s := r.Stats()
	if s.Whois != 1 || s.DropMalformed != 1 || s.DropOther != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A relay that serves as a rendezvous lists the relays registered with it, by identity, to whoever
// asks (the authorities), and a relay behind a NAT registers with its identity.
func TestRendezvousListsRegisteredRelays(t *testing.T) {
	rv, natted := whoisRelay(t, &link.RendezvousConfig{}), whoisRelay(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info := rv.Info()
	if _, err := natted.Register(ctx, link.Rendezvous{Key: info.LinkKey, Addr: info.Addr}); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nonce := [whois.NonceLen]byte{4}
	if _, err := c.WriteToUDPAddrPort(whois.RegisteredRequest(nonce, 0), info.Addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, whois.RegisteredRequestLen)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	_, pages, regs, err := whois.ParseRegistered(buf[:n], nonce)
	if err != nil || pages != 1 || len(regs) != 1 || regs[0].Identity != natted.Info().Identity || regs[0].Addr != natted.Info().Addr {
		t.Fatalf("registered list %+v (%d pages, %v), want the NAT'd relay at %v", regs, pages, err, natted.Info().Addr)
	}
	// A relay that is no rendezvous has nobody to list.
	if _, err := c.WriteToUDPAddrPort(whois.RegisteredRequest(nonce, 0), natted.Info().Addr); err != nil {
		t.Fatal(err)
	}
	if n, err = c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, _, regs, err := whois.ParseRegistered(buf[:n], nonce); err != nil || len(regs) != 0 {
		t.Fatalf("a relay that is no rendezvous listed %v (%v)", regs, err)
	}
}
