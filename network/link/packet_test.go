package link

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

func randomInitiation() initiation {
	m := initiation{SenderIndex: 0x01020304, RekeyIndex: 0x0a0b0c0d}
	rand.Read(m.Noise[:])
	rand.Read(m.MAC1[:])
	rand.Read(m.MAC2[:])
	return m
}

func randomResponse() response {
	m := response{SenderIndex: 0xa1b2c3d4, ReceiverIndex: 0x05060708}
	rand.Read(m.Noise[:])
	rand.Read(m.MAC1[:])
	return m
}

func randomCookieReply() cookieReply {
	m := cookieReply{ReceiverIndex: 0x99887766}
	rand.Read(m.Nonce[:])
	rand.Read(m.Sealed[:])
	return m
}

func TestInitiationRoundTrip(t *testing.T) {
	m := randomInitiation()
	b := appendInitiation(nil, &m)
	if len(b) != 152 {
		t.Fatalf("initiation is %d bytes, want 152", len(b))
	}
	want := []byte{1, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d}
	if !bytes.Equal(b[:12], want) {
		t.Fatalf("header % x, want % x", b[:12], want)
	}
	if !bytes.Equal(b[120:136], m.MAC1[:]) || !bytes.Equal(b[136:], m.MAC2[:]) {
		t.Fatal("mac1 and mac2 are not the last 32 bytes")
	}
	got, err := decodeInitiation(b)
	if err != nil || got != m {
		t.Fatalf("decode: %+v, %v", got, err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	m := randomResponse()
	b := appendResponse(nil, &m)
	if len(b) != 76 {
		t.Fatalf("response is %d bytes, want 76", len(b))
	}
	if !bytes.Equal(b[60:], m.MAC1[:]) {
		t.Fatal("mac1 is not the last 16 bytes")
	}
	want := []byte{2, 0, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4, 0x05, 0x06, 0x07, 0x08}
	if !bytes.Equal(b[:12], want) {
		t.Fatalf("header % x, want % x", b[:12], want)
	}
	got, err := decodeResponse(b)
	if err != nil || got != m {
		t.Fatalf("decode: %+v, %v", got, err)
	}
}

func TestCookieReplyRoundTrip(t *testing.T) {
	m := randomCookieReply()
	b := appendCookieReply(nil, &m)
	if len(b) != 64 {
		t.Fatalf("cookie reply is %d bytes, want 64", len(b))
	}
	want := []byte{3, 0, 0, 0, 0x99, 0x88, 0x77, 0x66}
	if !bytes.Equal(b[:8], want) || !bytes.Equal(b[8:32], m.Nonce[:]) {
		t.Fatalf("header % x, want % x and the nonce", b[:32], want)
	}
	got, err := decodeCookieReply(b)
	if err != nil || got != m {
		t.Fatalf("decode: %+v, %v", got, err)
	}
}

func TestTransportRoundTrip(t *testing.T) {
	h := transportHeader{ReceiverIndex: 0x11223344, Counter: 0x0102030405060708}
	body := bytes.Repeat([]byte{0xee}, tagLen+5)
	b := appendTransport(nil, h, body)
	want := []byte{4, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(b[:16], want) {
		t.Fatalf("header % x, want % x", b[:16], want)
	}
	gh, gbody, err := decodeTransport(b)
	if err != nil || gh != h || !bytes.Equal(gbody, body) {
		t.Fatalf("decode: %+v % x %v", gh, gbody, err)
	}
	var nonce [12]byte
	nonceFor(&nonce, h.Counter)
	if !bytes.Equal(nonce[:4], []byte{0, 0, 0, 0}) || !bytes.Equal(nonce[4:], b[8:16]) {
		t.Fatalf("nonce % x is not 4 zero bytes and the header's counter", nonce)
	}
}

func TestClassify(t *testing.T) {
	stun := make([]byte, 20)
	stun[0], stun[1] = 0x01, 0x01 // a Binding success response starts with our initiation's type byte
	binary.BigEndian.PutUint32(stun[4:8], stunMagicCookie)
	init := randomInitiation()
	resp := randomResponse()
	cr := randomCookieReply()
	tests := []struct {
		name string
		pkt  []byte
		want kind
	}{
		{"empty", nil, kindOther},
		{"stun", stun, kindOther},
		{"type 0", make([]byte, 100), kindOther},
		{"type 6", append([]byte{6, 0, 0, 0}, make([]byte, 60)...), kindOther},
		{"relayed", append([]byte{5, 0, 0, 0, 0, 0, 0, 9}, make([]byte, minTransportLen)...), kindRelayed},
		{"relayed too short", append([]byte{5, 0, 0, 0, 0, 0, 0, 9}, make([]byte, minTransportLen-1)...), kindMalformed},
		{"relayed max", append([]byte{5, 0, 0, 0}, make([]byte, relayHeaderLen-4+MaxPacket)...), kindRelayed},
		{"relayed too long", append([]byte{5, 0, 0, 0}, make([]byte, relayHeaderLen-3+MaxPacket)...), kindMalformed},
		{"relayed reserved", append([]byte{5, 1, 0, 0}, make([]byte, 60)...), kindMalformed},
		{"transport control", append([]byte{4, flagControl, 0, 0}, make([]byte, 40)...), kindTransport},
		{"transport other flag", append([]byte{4, 2, 0, 0}, make([]byte, 40)...), kindMalformed},
		{"initiation", appendInitiation(nil, &init), kindInitiation},
		{"initiation short", appendInitiation(nil, &init)[:initiationLen-1], kindMalformed},
		{"initiation long", append(appendInitiation(nil, &init), 0), kindMalformed},
		{"response", appendResponse(nil, &resp), kindResponse},
		{"response short", appendResponse(nil, &resp)[:responseLen-1], kindMalformed},
		{"cookie reply", appendCookieReply(nil, &cr), kindCookieReply},
		{"cookie reply short", appendCookieReply(nil, &cr)[:cookieReplyLen-1], kindMalformed},
		{"cookie reply long", append(appendCookieReply(nil, &cr), 0), kindMalformed},
		{"cookie reply reserved", append([]byte{3, 0, 1, 0}, make([]byte, 60)...), kindMalformed},
		{"transport reserved", append([]byte{4, 0, 1, 0}, make([]byte, 40)...), kindMalformed},
		{"transport too short", append([]byte{4, 0, 0, 0}, make([]byte, minTransportLen-5)...), kindMalformed},
		{"transport keepalive", append([]byte{4, 0, 0, 0}, make([]byte, minTransportLen-4)...), kindTransport},
		{"transport max", append([]byte{4, 0, 0, 0}, make([]byte, MaxPacket-4)...), kindTransport},
		{"transport too long", append([]byte{4, 0, 0, 0}, make([]byte, MaxPacket-3)...), kindMalformed},
		{"three bytes", []byte{4, 0, 0}, kindMalformed},
	}
	for _, tc := range tests {
		if got := classify(tc.pkt); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestMaxPacketFitsIPv6MTU(t *testing.T) {
	if MaxPacket != 1500-40-8 {
		t.Fatalf("MaxPacket = %d, want %d", MaxPacket, 1500-40-8)
	}
	if initiationNoiseLen != 108 || responseNoiseLen != 48 {
		t.Fatalf("Noise message sizes %d and %d, want 108 and 48", initiationNoiseLen, responseNoiseLen)
	}
}

// FuzzDecodePacket runs every decoder on arbitrary bytes: none may panic, each must agree with
// classify, and whatever decodes must encode back to the same bytes.
func FuzzDecodePacket(f *testing.F) {
	init, resp := randomInitiation(), randomResponse()
	f.Add(appendInitiation(nil, &init))
	f.Add(appendResponse(nil, &resp))
	cr := randomCookieReply()
	f.Add(appendCookieReply(nil, &cr))
	f.Add(appendTransport(nil, transportHeader{ReceiverIndex: 7, Counter: 9}, make([]byte, 40)))
	f.Add([]byte{3, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k := classify(b)
		if m, err := decodeInitiation(b); err == nil {
			if k != kindInitiation || !bytes.Equal(appendInitiation(nil, &m), b) {
				t.Fatalf("initiation does not round-trip (kind %d)", k)
			}
		} else if k == kindInitiation {
			t.Fatal("classify says initiation, decoder refuses")
		}
		if m, err := decodeResponse(b); err == nil {
			if k != kindResponse || !bytes.Equal(appendResponse(nil, &m), b) {
				t.Fatalf("response does not round-trip (kind %d)", k)
			}
		} else if k == kindResponse {
			t.Fatal("classify says response, decoder refuses")
		}
		if m, err := decodeCookieReply(b); err == nil {
			if k != kindCookieReply || !bytes.Equal(appendCookieReply(nil, &m), b) {
				t.Fatalf("cookie reply does not round-trip (kind %d)", k)
			}
		} else if k == kindCookieReply {
			t.Fatal("classify says cookie reply, decoder refuses")
		}
		if h, body, err := decodeTransport(b); err == nil {
			if k != kindTransport || !bytes.Equal(appendTransport(nil, h, body), b) {
				t.Fatalf("transport does not round-trip (kind %d)", k)
			}
			if len(b) > MaxPacket || len(body) < tagLen {
				t.Fatalf("transport of %d bytes accepted", len(b))
			}
		} else if k == kindTransport {
			t.Fatal("classify says transport, decoder refuses")
		}
		if k != kindOther && len(b) >= 20 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie {
			t.Fatal("a STUN message was taken for a link packet")
		}
	})
}
