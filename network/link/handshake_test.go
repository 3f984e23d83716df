package link

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// handshakePair runs a complete handshake between two fresh keys without sockets.
type handshakePair struct {
	ikey, rkey   *localKey
	init         initiation
	resp         response
	ihs          *initiatorHandshake
	ikeys, rkeys sessionKeys
}

func freshEphemeral(t testing.TB) [32]byte {
	var e [32]byte
	if _, err := rand.Read(e[:]); err != nil {
		t.Fatal(err)
	}
	return e
}

func startHandshake(t testing.TB) *handshakePair {
	t.Helper()
	p := &handshakePair{ikey: newLocalKey(newStatic(t)), rkey: newLocalKey(newStatic(t))}
	var err error
	p.ihs, p.init, err = newInitiatorHandshake(p.ikey, p.rkey.pub, 11, 0, makeTAI64N(time.Now()), freshEphemeral(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func completeHandshake(t testing.TB) *handshakePair {
	t.Helper()
	p := startHandshake(t)
	rhs, err := readInitiation(p.rkey, &p.init)
	if err != nil {
		t.Fatal(err)
	}
	if rhs.peer != p.ikey.pub || rhs.index != 11 || rhs.timestamp != p.ihs.timestamp {
		t.Fatalf("responder read peer/index/timestamp wrong: %+v", rhs)
	}
	p.resp, p.rkeys, err = rhs.writeResponse(22)
	if err != nil {
		t.Fatal(err)
	}
	p.ikeys, err = p.ihs.readResponse(&p.resp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHandshakeAgreesOnKeys(t *testing.T) {
	p := completeHandshake(t)
	if p.ikeys.send != p.rkeys.recv || p.ikeys.recv != p.rkeys.send {
		t.Fatal("the two sides derived different keys")
	}
	if p.ikeys.send == p.ikeys.recv {
		t.Fatal("both directions share a key")
	}
	if p.resp.SenderIndex != 22 || p.resp.ReceiverIndex != 11 {
		t.Fatalf("response indices %d/%d", p.resp.SenderIndex, p.resp.ReceiverIndex)
	}
	q := completeHandshake(t)
	if p.ikeys.send == q.ikeys.send {
		t.Fatal("two handshakes gave the same keys")
	}
}

func TestHandshakeWithWrongResponderKeyFails(t *testing.T) {
	p := startHandshake(t)
	other := newLocalKey(newStatic(t))
	if _, err := readInitiation(other, &p.init); !errors.Is(err, errHandshake) {
		t.Fatalf("initiation for another key read with err %v", err)
	}
}

// Every bit of both handshake messages before their MACs is authenticated by the handshake, headers
// included (bitsToFlip says which are tried); the MACs themselves are checked before it
// (TestMAC1CoversEveryBit).
func TestHandshakeMessagesRefuseEveryBitFlip(t *testing.T) {
	p := completeHandshake(t)
	wire := appendInitiation(nil, &p.init)
	for _, bit := range bitsToFlip(initiationMAC1At, initiationHeaderLen) {
		m, err := decodeInitiation(flipBit(wire, bit))
		if err != nil {
			continue // framing caught it
		}
		if _, err := readInitiation(p.rkey, &m); err == nil {
			t.Fatalf("initiation with bit %d flipped was accepted", bit)
		}
	}

	q := startHandshake(t)
	rhs, err := readInitiation(q.rkey, &q.init)
	if err != nil {
		t.Fatal(err)
	}
	resp, rkeys, err := rhs.writeResponse(33)
	if err != nil {
		t.Fatal(err)
	}
	wire = appendResponse(nil, &resp)
	for _, bit := range bitsToFlip(responseMAC1At, responseHeaderLen) {
		m, err := decodeResponse(flipBit(wire, bit))
		if err != nil {
			continue
		}
		if _, err := q.ihs.readResponse(&m); err == nil {
			t.Fatalf("response with bit %d flipped was accepted", bit)
		}
	}
	// The failures must not have spoiled the handshake for the genuine response.
	ikeys, err := q.ihs.readResponse(&resp)
	if err != nil {
		t.Fatalf("genuine response after forged ones: %v", err)
	}
	if ikeys.send != rkeys.recv {
		t.Fatal("keys differ after recovering from forged responses")
	}
}

func TestResponseWithLowOrderEphemeralDoesNotSpoilHandshake(t *testing.T) {
	q := startHandshake(t)
	rhs, err := readInitiation(q.rkey, &q.init)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := rhs.writeResponse(44)
	if err != nil {
		t.Fatal(err)
	}
	forged := resp
	clear(forged.Noise[:keyLen]) // the all-zero point: X25519 refuses it
	if _, err := q.ihs.readResponse(&forged); err == nil {
		t.Fatal("response with a low-order ephemeral accepted")
	}
	if _, err := q.ihs.readResponse(&resp); err != nil {
		t.Fatalf("genuine response after a low-order one: %v", err)
	}
}

func TestInitiationCarriesTimestampAndInitiatorKey(t *testing.T) {
	p := startHandshake(t)
	rhs, err := readInitiation(p.rkey, &p.init)
	if err != nil {
		t.Fatal(err)
	}
	if rhs.peer != p.ikey.pub {
		t.Fatal("responder learned the wrong initiator key")
	}
	if !bytes.Equal(rhs.timestamp[:], p.ihs.timestamp[:]) {
		t.Fatal("timestamp did not arrive")
	}
	// The initiator's static key is encrypted: it must not appear in clear.
	wire := appendInitiation(nil, &p.init)
	if bytes.Contains(wire, p.ikey.pub[:]) {
		t.Fatal("initiator's static key is visible on the wire")
	}
}

func TestTimestampsOrder(t *testing.T) {
	base := time.Unix(1_700_000_000, 999_999_999)
	a, b := makeTAI64N(base), makeTAI64N(base.Add(time.Nanosecond))
	if !b.after(a) || a.after(b) || a.after(a) {
		t.Fatal("timestamps do not order by time")
	}
	if a.next() != b {
		t.Fatal("next is not one nanosecond later across a second boundary")
	}
	var c timestampClock
	frozen := time.Unix(1_700_000_000, 0)
	prev := c.stamp(frozen)
	for range 100 {
		ts := c.stamp(frozen)
		if !ts.after(prev) {
			t.Fatal("timestamp clock repeated itself under a stopped clock")
		}
		prev = ts
	}
	if ts := c.stamp(frozen.Add(-time.Hour)); !ts.after(prev) {
		t.Fatal("timestamp clock went back with the wall clock")
	}
}

func TestNewestTimestampsRefusesReplayAndStaysBounded(t *testing.T) {
	s := newNewestTimestamps(3)
	var k1, k2 keys.StaticPublic
	k1[0], k2[0] = 1, 2
	t0 := makeTAI64N(time.Unix(100, 0))
	t1 := makeTAI64N(time.Unix(101, 0))
	if !s.accept(k1, t0) {
		t.Fatal("first timestamp refused")
	}
	if s.accept(k1, t0) {
		t.Fatal("equal timestamp accepted")
	}
	if !s.accept(k2, t0) {
		t.Fatal("another key's timestamp refused")
	}
	if !s.accept(k1, t1) || s.accept(k1, t0) {
		t.Fatal("newer not accepted, or older accepted after it")
	}
	for i := range 10 {
		var k keys.StaticPublic
		k[1] = byte(i + 10)
		s.accept(k, t0)
	}
	if s.len() != 3 {
		t.Fatalf("holds %d keys, want the bound 3", s.len())
	}
}

// The parsed-key DH is DH25519: a responder built on flynn/noise's own DH25519 completes a handshake
// with our initiator and derives the same keys.
func TestParsedKeyDHInteroperatesWithNoiseDH25519(t *testing.T) {
	p := startHandshake(t)
	plain := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
	st, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           plain,
		Pattern:               noise.HandshakeIK,
		Prologue:              prologue(p.init.SenderIndex, p.init.RekeyIndex),
		PresharedKeyPlacement: 2,
		StaticKeypair:         p.rkey.dh,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, _, _, err := st.ReadMessage(nil, p.init.Noise[:])
	if err != nil || !bytes.Equal(ts, p.ihs.timestamp[:]) {
		t.Fatalf("plain Noise responder: %v", err)
	}
	resp := response{SenderIndex: 5, ReceiverIndex: p.init.SenderIndex}
	if err := st.SetPresharedKey(responsePSK(5, p.init.SenderIndex)); err != nil {
		t.Fatal(err)
	}
	out, cs1, cs2, err := st.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(resp.Noise[:], out)
	ks, err := p.ihs.readResponse(&resp)
	if err != nil {
		t.Fatalf("our initiator refused a plain Noise response: %v", err)
	}
	if ks.send != cs1.UnsafeKey() || ks.recv != cs2.UnsafeKey() {
		t.Fatal("keys differ from plain Noise")
	}

	for range 20 {
		a, b := newStatic(t), newStatic(t)
		pub := b.Public()
		want, err := noise.DH25519.DH(a.Bytes(), pub[:])
		if err != nil {
			t.Fatal(err)
		}
		d := &x25519{static: a.PrivateKey(), staticRaw: a.Bytes()}
		got, err := d.DH(a.Bytes(), pub[:])
		if err != nil || !bytes.Equal(got, want) {
			t.Fatal("parsed-key DH differs from DH25519")
		}
	}
	var zero [32]byte
	if _, err := (&x25519{}).DH(newStatic(t).Bytes(), zero[:]); err == nil {
		t.Fatal("DH with a low-order point succeeded")
	}
}
