package stun

import (
	"net"
	"net/netip"
	"testing"
	"time"

	pion "github.com/pion/stun/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerAnswersWithTheSourceAddress(t *testing.T) {
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(sc, 0, nil)
	defer srv.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Garbage and a non-binding message get no answer; they are counted.
	c.WriteToUDPAddrPort([]byte("hello"), srv.Addr())
	ind, _ := pion.Build(pion.TransactionID, pion.NewType(pion.MethodBinding, pion.ClassIndication))
	c.WriteToUDPAddrPort(ind.Raw, srv.Addr())
	req, id, err := Request()
	if err != nil {
		t.Fatal(err)
	}
	if !IsMessage(req) || IsMessage([]byte("hello")) {
		t.Fatal("IsMessage")
	}
	if _, err := c.WriteToUDPAddrPort(req, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseResponse(buf[:n], id)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Fatalf("mapped address %v, want %v", got, want)
	}
	if _, err := ParseResponse(buf[:n], [12]byte{1}); err == nil {
		t.Fatal("an answer to another transaction was accepted")
	}
	for deadline := time.Now().Add(2 * time.Second); srv.Stats().Refused < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if s := srv.Stats(); s.Answered != 1 || s.Refused != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestResponseIPv6(t *testing.T) {
	req, id, _ := Request()
	from := netip.MustParseAddrPort("[2001:db8::7]:4242")
	resp, err := Response(req, from)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseResponse(resp, id); err != nil || got != from {
		t.Fatalf("%v %v", got, err)
	}
}

func TestServerRateLimit(t *testing.T) {
	sc, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	srv := Serve(sc, 3, nil)
	defer srv.Close()
	c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer c.Close()
	for range 10 {
		req, _, _ := Request()
		c.WriteToUDPAddrPort(req, srv.Addr())
	}
	for deadline := time.Now().Add(2 * time.Second); srv.Stats().Answered+srv.Stats().Limited < 10 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if s := srv.Stats(); s.Answered != 3 || s.Limited != 7 {
		t.Fatalf("with a rate of 3/s: %+v", s)
	}
}

func FuzzResponse(f *testing.F) {
	req, _, _ := Request()
	f.Add(req)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	from := netip.MustParseAddrPort("198.51.100.1:1234")
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := Response(b, from)
		if err != nil {
			return
		}
		if len(resp) > 200 {
			t.Fatalf("a %d-byte request got a %d-byte answer", len(b), len(resp))
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	req, id, _ := Request()
	resp, _ := Response(req, netip.MustParseAddrPort("198.51.100.1:1234"))
	f.Add(resp)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseResponse(b, id)
	})
}
