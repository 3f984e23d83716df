package cell

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

func TestParseHeader(t *testing.T) {
	msg := make([]byte, HeaderLen+onion.SmallSize)
	PutHeader(msg, Header{Circuit: 0x80000001, Command: Relay})
	h, body, err := Parse(msg, onion.DefaultSizes)
	if err != nil || h.Circuit != 0x80000001 || h.Command != Relay || len(body) != onion.SmallSize {
		t.Fatalf("%+v %d %v", h, len(body), err)
	}
	bad := map[string][]byte{
		"short":           msg[:3],
		"not a class":     msg[:HeaderLen+100],
		"circuit zero":    append([]byte{0, 0, 0, 0, byte(Relay)}, make([]byte, onion.SmallSize)...),
		"unknown command": append([]byte{0, 0, 0, 1, 9}, make([]byte, onion.SmallSize)...),
	}
	for name, m := range bad {
		if _, _, err := Parse(m, onion.DefaultSizes); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCreateRoundTrip(t *testing.T) {
	hs := bytes.Repeat([]byte{7}, ntor.ClientMessageLen)
	body := make([]byte, onion.SmallSize)
	if err := (&CreateBody{Depth: 2, Handshake: hs}).Encode(body); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCreate(body)
	if err != nil || c.Depth != 2 || !bytes.Equal(c.Handshake, hs) {
		t.Fatalf("%+v %v", c, err)
	}
	body[len(body)-1] = 1
	if _, err := DecodeCreate(body); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nonzero padding: %v", err)
	}
	reply := bytes.Repeat([]byte{9}, ntor.ServerMessageLen)
	if err := EncodeCreated(body, reply); err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeCreated(body); err != nil || !bytes.Equal(got, reply) {
		t.Fatal(err)
	}
	EncodeDestroy(body, ReasonAuth)
	if r, err := DecodeDestroy(body); err != nil || r != ReasonAuth {
		t.Fatal(r, err)
	}
}

func TestRelayMessages(t *testing.T) {
	payload := make([]byte, 200)
	data := []byte("hello")
	if err := PutMsg(payload, MsgData, data); err != nil {
		t.Fatal(err)
	}
	typ, got, err := ParseMsg(payload)
	if err != nil || typ != MsgData || !bytes.Equal(got, data) {
		t.Fatal(typ, got, err)
	}
	if err := PutMsg(payload, MsgData, make([]byte, MaxData(len(payload))+1)); err == nil {
		t.Fatal("oversized data accepted")
	}
	payload[3] = 250 // length beyond the payload
	if _, _, err := ParseMsg(payload); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

func TestExtendRoundTrip(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9000", "[2001:db8::1]:443"} {
		e := Extend{Addr: netip.MustParseAddrPort(addr), Handshake: bytes.Repeat([]byte{3}, ntor.ClientMessageLen)}
		e.Identity[0], e.LinkKey[31] = 1, 2
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeExtend(b)
		if err != nil || got.Addr != e.Addr || got.Identity != e.Identity || got.LinkKey != e.LinkKey || !bytes.Equal(got.Handshake, e.Handshake) {
			t.Fatalf("%s: %+v %v", addr, got, err)
		}
	}
	// The whole EXTEND message fits the small cell at the depth it is sent to (the second hop).
	if MsgHeaderLen+ExtendLen > onion.PayloadLen(onion.SmallSize, 2) {
		t.Fatalf("EXTEND (%d bytes) does not fit a small cell to hop 2 (%d)", MsgHeaderLen+ExtendLen, onion.PayloadLen(onion.SmallSize, 2))
	}
}

func FuzzParse(f *testing.F) {
	msg := make([]byte, HeaderLen+onion.SmallSize)
	PutHeader(msg, Header{Circuit: 5, Command: Create})
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, body, err := Parse(b, onion.DefaultSizes)
		if err != nil {
			return
		}
		out := make([]byte, len(b))
		PutHeader(out, h)
		copy(out[HeaderLen:], body)
		if !bytes.Equal(out, b) {
			t.Fatal("parse/encode mismatch")
		}
		switch h.Command {
		case Create:
			DecodeCreate(body)
		case Created:
			DecodeCreated(body)
		case Destroy:
			DecodeDestroy(body)
		}
	})
}

func FuzzParseMsg(f *testing.F) {
	p := make([]byte, 64)
	PutMsg(p, MsgProbe, []byte{1, 2, 3})
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, data, err := ParseMsg(b)
		if err != nil {
			return
		}
		out := make([]byte, len(b))
		if err := PutMsg(out, typ, data); err != nil {
			t.Fatal(err)
		}
		if typ == MsgExtend {
			DecodeExtend(data)
		}
	})
}

func FuzzDecodeExtend(f *testing.F) {
	e := Extend{Addr: netip.MustParseAddrPort("10.0.0.1:1"), Handshake: make([]byte, ntor.ClientMessageLen)}
	b, _ := e.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeExtend(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded extend does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("extend does not round-trip")
		}
	})
}
