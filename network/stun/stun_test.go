package stun

import (
	"net"
	"net/netip"
	"slices"
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

// changeRequest is RFC 5780's CHANGE-REQUEST asking for an answer from another IP address and port.
var changeRequest = pion.RawAttribute{Type: pion.AttrChangeRequest, Value: []byte{0, 0, 0, 6}}

// requestWith returns a Binding request carrying attrs, with a FINGERPRINT, and its transaction id.
func requestWith(t testing.TB, attrs ...pion.Setter) ([]byte, [pion.TransactionIDSize]byte) {
	t.Helper()
	setters := append([]pion.Setter{pion.TransactionID, pion.BindingRequest}, attrs...)
	m, err := pion.Build(append(setters, pion.Fingerprint)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw, m.TransactionID
}

// unknownIn checks that resp is a Binding error response 420 for transaction id and returns the
// attributes its UNKNOWN-ATTRIBUTES lists.
func unknownIn(t *testing.T, resp []byte, id [pion.TransactionIDSize]byte) pion.UnknownAttributes {
	t.Helper()
	m := new(pion.Message)
	if err := pion.Decode(resp, m); err != nil {
		t.Fatal(err)
	}
	if m.Type != pion.BindingError || m.TransactionID != id {
		t.Fatalf("answer %v for another transaction or not a Binding error response", m.Type)
	}
	if err := pion.Fingerprint.Check(m); err != nil {
		t.Fatal(err)
	}
	var code pion.ErrorCodeAttribute
	if err := code.GetFrom(m); err != nil || code.Code != pion.CodeUnknownAttribute {
		t.Fatalf("ERROR-CODE %v (%v), want 420", code, err)
	}
	var unknown pion.UnknownAttributes
	if err := unknown.GetFrom(m); err != nil {
		t.Fatal(err)
	}
	return unknown
}

// TestServerAnswers420ToChangeRequest: a Binding request with RFC 5780's CHANGE-REQUEST, which this
// server does not support, gets a 420 (Unknown Attribute) error response naming it (RFC 5389 §7.3.1),
// not an answer as if it were plain, from the port it did not ask for; a plain request on the same
// socket is still answered.
func TestServerAnswers420ToChangeRequest(t *testing.T) {
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
	read := func() []byte {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	req, id := requestWith(t, pion.NewSoftware("coturn-like"), changeRequest)
	if _, err := c.WriteToUDPAddrPort(req, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if got := unknownIn(t, read(), id); len(got) != 1 || got[0] != pion.AttrChangeRequest {
		t.Fatalf("UNKNOWN-ATTRIBUTES %v, want CHANGE-REQUEST", got)
	}
	plain, plainID, err := Request()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(plain, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	got, err := ParseResponse(read(), plainID)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Fatalf("mapped address %v, want %v", got, want)
	}
	if s := srv.Stats(); s.Answered != 1 || s.Unknown != 1 || s.Refused != 0 {
		t.Fatalf("stats %+v, want one answered and one 420", s)
	}
}

// TestResponseUnknownAttributes: only comprehension-required attributes that are not STUN's own make a
// 420; each is listed once and the list is bounded, so a request never gets an answer much larger
// than itself. Comprehension-optional attributes (0x8000 and up) are ignored, as RFC 5389 says.
func TestResponseUnknownAttributes(t *testing.T) {
	from := netip.MustParseAddrPort("198.51.100.1:1234")
	// STUN's own attributes and comprehension-optional ones: a plain answer.
	req, id := requestWith(t, pion.NewUsername("u"), pion.NewNonce("n"), pion.NewRealm("r"),
		pion.RawAttribute{Type: pion.AttrICEControlled, Value: make([]byte, 8)},
		pion.RawAttribute{Type: pion.AttrResponseOrigin, Value: make([]byte, 8)})
	resp, err := Response(req, from)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseResponse(resp, id); err != nil || got != from {
		t.Fatalf("%v %v", got, err)
	}
	// Unknown comprehension-required ones, repeated: each listed once, in order.
	req, id = requestWith(t, changeRequest, pion.RawAttribute{Type: pion.AttrResponsePort, Value: []byte{0, 1, 0, 0}},
		changeRequest, pion.RawAttribute{Type: 0x7f00, Value: nil})
	resp, err = Response(req, from)
	if err != nil {
		t.Fatal(err)
	}
	if got := unknownIn(t, resp, id); !slices.Equal(got, pion.UnknownAttributes{pion.AttrChangeRequest, pion.AttrResponsePort, 0x7f00}) {
		t.Fatalf("UNKNOWN-ATTRIBUTES %v", got)
	}
	// Many: the list stops at maxUnknown.
	var many []pion.Setter
	for i := range 100 {
		many = append(many, pion.RawAttribute{Type: pion.AttrType(0x4000 + i)})
	}
	req, id = requestWith(t, many...)
	resp, err = Response(req, from)
	if err != nil {
		t.Fatal(err)
	}
	if got := unknownIn(t, resp, id); len(got) != maxUnknown || got[0] != 0x4000 {
		t.Fatalf("UNKNOWN-ATTRIBUTES of %d: %v", len(got), got)
	}
	if len(resp) > 200 {
		t.Fatalf("a 420 of %d bytes", len(resp))
	}
}

func FuzzResponse(f *testing.F) {
	req, _, _ := Request()
	f.Add(req)
	req, _ = requestWith(f, changeRequest)
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
