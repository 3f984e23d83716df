package relay

import (
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestRelayAnswersWhois(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.GenerateIdentity(rand.Reader)
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	network := [32]byte{1, 2, 3}
	r, err := New(Config{Conn: conn, Identity: id, LinkKey: lk, OnionKeys: []*keys.Static{ok}, NetworkID: network})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
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
