package cell

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
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

// A DESTROY carries one of the known reasons or nothing: any other byte could be a message between the
// circuit's ends, and is refused.
func TestDestroyReasonsAreKnownOnes(t *testing.T) {
	body := make([]byte, 64)
	for b := range 256 {
		EncodeDestroy(body, DestroyReason(b))
		r, err := DecodeDestroy(body)
		known := DestroyReason(b) <= ReasonDestroyed
		if known && (err != nil || r != DestroyReason(b)) {
			t.Fatalf("reason %d: %v, %v", b, r, err)
		}
		if !known && (!errors.Is(err, ErrDestroyReason) || !errors.Is(err, ErrMalformed)) {
			t.Fatalf("reason %d accepted: %v, %v", b, r, err)
		}
	}
	if ReasonDestroyed.String() != "destroyed" {
		t.Fatal(ReasonDestroyed.String())
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

// TestRelayMessagePaddingMustBeZero is a sender (a hostile exit or client) hiding a mark in the bytes
// after a message's data, where the reader would never look: each such byte is refused, anywhere in
// the padding, in small and full payloads.
func TestRelayMessagePaddingMustBeZero(t *testing.T) {
	for _, size := range []int{onion.PayloadLen(onion.SmallSize, 3), onion.PayloadLen(onion.FullSize, 1), 3000} {
		payload := make([]byte, size)
		data := []byte("hello")
		if err := PutMsg(payload, MsgData, data); err != nil {
			t.Fatal(err)
		}
		for _, at := range []int{MsgHeaderLen + len(data), MsgHeaderLen + len(data) + 1, size / 2, 2049, size - 1} {
			if at >= size {
				continue
			}
			marked := bytes.Clone(payload)
			marked[at] = 0x80
			if _, _, err := ParseMsg(marked); !errors.Is(err, ErrMalformed) {
				t.Errorf("%d-byte payload, byte %d of the padding set: %v", size, at, err)
			}
		}
		if _, got, err := ParseMsg(payload); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d-byte payload: %q %v", size, got, err)
		}
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

func TestExtendWithRendezvousRoundTrip(t *testing.T) {
	for _, c := range []struct{ addr, rendezvous string }{
		{"198.51.100.7:9000", "203.0.113.9:7000"},
		{"198.51.100.7:9000", "[2001:db8::9]:7000"},
		{"[2001:db8::1]:443", "203.0.113.9:7000"},
	} {
		e := Extend{
			Addr: netip.MustParseAddrPort(c.addr), Handshake: bytes.Repeat([]byte{3}, ntor.ClientMessageLen),
			RendezvousAddr: netip.MustParseAddrPort(c.rendezvous),
		}
		e.Identity[0], e.LinkKey[31], e.RendezvousKey[0], e.RendezvousKey[31] = 1, 2, 4, 5
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != ExtendRendezvousLen {
			t.Fatalf("%v: %d bytes, want %d", c, len(b), ExtendRendezvousLen)
		}
		// The first ExtendLen bytes are the EXTEND of the same relay reached directly.
		direct := e
		direct.RendezvousAddr, direct.RendezvousKey = netip.AddrPort{}, keys.StaticPublic{}
		if d, _ := direct.Encode(); !bytes.Equal(b[:ExtendLen], d) {
			t.Fatalf("%v: the rendezvous changed the fields before it", c)
		}
		got, err := DecodeExtend(b)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if got.Addr != e.Addr || got.Identity != e.Identity || got.LinkKey != e.LinkKey || !bytes.Equal(got.Handshake, e.Handshake) ||
			got.RendezvousAddr != e.RendezvousAddr || got.RendezvousKey != e.RendezvousKey {
			t.Fatalf("%v: %+v", c, got)
		}
		if &got.Handshake[0] != &b[83] {
			t.Fatalf("%v: the handshake does not alias the data", c)
		}
	}
	// Without a rendezvous the data is ExtendLen bytes and decodes with no rendezvous.
	e := Extend{Addr: netip.MustParseAddrPort("198.51.100.7:9000"), Handshake: make([]byte, ntor.ClientMessageLen)}
	b, err := e.Encode()
	if err != nil || len(b) != ExtendLen {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if got, err := DecodeExtend(b); err != nil || got.RendezvousAddr.IsValid() || got.RendezvousKey != (keys.StaticPublic{}) {
		t.Fatalf("%+v %v", got, err)
	}
	// With its header an EXTEND that names a rendezvous is 236 bytes, more than a small cell carries to
	// hop 2 (208), so it rides a full cell (docs/protocol.md says so); a full cell carries either kind to
	// the deepest hop that may still extend.
	if n, _ := onion.DefaultSizes.For(MsgHeaderLen+ExtendRendezvousLen, 2); n != onion.FullSize {
		t.Fatalf("an EXTEND with a rendezvous rides a %d-byte cell to hop 2", n)
	}
	for _, n := range []int{ExtendLen, ExtendRendezvousLen} {
		if _, ok := onion.DefaultSizes.For(MsgHeaderLen+n, onion.MaxHops-1); !ok {
			t.Fatalf("a %d-byte EXTEND does not fit any cell to hop %d", n, onion.MaxHops-1)
		}
	}
}

func TestExtendRefusals(t *testing.T) {
	good := Extend{
		Addr: netip.MustParseAddrPort("198.51.100.7:9000"), Handshake: make([]byte, ntor.ClientMessageLen),
		RendezvousAddr: netip.MustParseAddrPort("203.0.113.9:7000"), RendezvousKey: keys.StaticPublic{9},
	}
	b, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rv := ExtendLen
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	for name, m := range map[string][]byte{
		"one byte short":                 b[:len(b)-1],
		"one byte long":                  append(bytes.Clone(b), 0),
		"rendezvous without its key":     b[:ExtendLen+addrLen],
		"rendezvous family 5":            mutate(func(b []byte) []byte { b[rv] = 5; return b }),
		"rendezvous IPv4 family on IPv6": mutate(func(b []byte) []byte { b[rv+1] = 0x20; return b }),
		"rendezvous IPv6 family on IPv4": mutate(func(b []byte) []byte { b[rv] = 6; return b }),
		"rendezvous port 0":              mutate(func(b []byte) []byte { b[rv+17], b[rv+18] = 0, 0; return b }),
		"rendezvous unspecified": mutate(func(b []byte) []byte {
			copy(b[rv+1:rv+17], netip.IPv6Unspecified().AsSlice())
			b[rv] = 6
			return b
		}),
		"address port 0": mutate(func(b []byte) []byte { b[17], b[18] = 0, 0; return b }),
	} {
		if _, err := DecodeExtend(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}

	for name, e := range map[string]Extend{
		"rendezvous key without an address": {Addr: good.Addr, Handshake: good.Handshake, RendezvousKey: good.RendezvousKey},
		"rendezvous port 0":                 {Addr: good.Addr, Handshake: good.Handshake, RendezvousAddr: netip.MustParseAddrPort("203.0.113.9:0")},
		"rendezvous unspecified":            {Addr: good.Addr, Handshake: good.Handshake, RendezvousAddr: netip.MustParseAddrPort("0.0.0.0:1")},
		"rendezvous IPv4 in IPv6 form":      {Addr: good.Addr, Handshake: good.Handshake, RendezvousAddr: netip.MustParseAddrPort("[::ffff:203.0.113.9]:1")},
		"address IPv4 in IPv6 form":         {Addr: netip.MustParseAddrPort("[::ffff:198.51.100.7]:1"), Handshake: good.Handshake},
	} {
		if b, err := e.Encode(); err == nil {
			t.Errorf("%s: encoded as %x", name, b)
		}
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
	e := Extend{
		Addr: netip.MustParseAddrPort("10.0.0.1:1"), Handshake: make([]byte, ntor.ClientMessageLen),
		RendezvousAddr: netip.MustParseAddrPort("10.0.0.2:2"), RendezvousKey: keys.StaticPublic{1},
	}
	data, _ := e.Encode()
	p = make([]byte, onion.PayloadLen(onion.FullSize, 2))
	PutMsg(p, MsgExtend, data)
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
		// Everything a message carries is in its type and data: re-encoding gives the same bytes, so
		// no byte of the payload (the padding included) is left for a covert mark.
		if !bytes.Equal(out, b) {
			t.Fatalf("parse/encode mismatch: %x became %x", b, out)
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
	e.RendezvousAddr, e.RendezvousKey = netip.MustParseAddrPort("[2001:db8::9]:7000"), keys.StaticPublic{1}
	b, _ = e.Encode()
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
