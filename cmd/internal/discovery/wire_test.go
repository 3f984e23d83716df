package discovery

import (
	"bytes"
	"strings"
	"testing"
)

func TestPointer(t *testing.T) {
	p := Pointer{Serial: 0x0102030405060708, Hash: [32]byte{9, 9, 9}}
	b := p.Encode()
	if len(b) != PointerLen || b[0] != 1 || b[7] != 8 || b[8] != 9 {
		t.Fatalf("encoding %x", b)
	}
	got, err := ParsePointer(b)
	if err != nil || got != p {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, b[:PointerLen-1], append(b, 0), Pointer{Serial: 0}.Encode()} {
		if _, err := ParsePointer(bad); err == nil {
			t.Errorf("ParsePointer(%x) accepted", bad)
		}
	}
}

func TestSalts(t *testing.T) {
	id := [32]byte{7}
	if !bytes.Equal(DescriptorSalt(id), id[:]) {
		t.Fatal("the descriptor salt is not the network id")
	}
	ds := DirectorySalt(id)
	if !strings.HasPrefix(string(ds), "directory") || !bytes.Equal(ds[len("directory"):], id[:]) || len(ds) > 64 {
		t.Fatalf("directory salt %q", ds)
	}
}

func TestBundle(t *testing.T) {
	descs := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 900)}
	b, err := EncodeBundle(descs)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 2+3+2+2+900 || b[0] != 0 || b[1] != 3 {
		t.Fatalf("encoding of %d bytes starting %x", len(b), b[:2])
	}
	got, err := ParseBundle(b)
	if err != nil || len(got) != len(descs) {
		t.Fatalf("parsed %d items: %v", len(got), err)
	}
	for i := range descs {
		if !bytes.Equal(got[i], descs[i]) {
			t.Errorf("item %d: %x", i, got[i])
		}
	}
	if empty, err := ParseBundle(nil); err != nil || len(empty) != 0 {
		t.Fatalf("empty bundle: %v %v", empty, err)
	}
	for _, bad := range [][]byte{{0}, {0, 4, 1, 2, 3}, append(b, 0)} {
		if _, err := ParseBundle(bad); err == nil {
			t.Errorf("ParseBundle(%x) accepted", bad)
		}
	}
	if _, err := EncodeBundle([][]byte{make([]byte, 0x10000)}); err == nil {
		t.Error("a 64 KiB item was encoded")
	}
}

func FuzzParsePointer(f *testing.F) {
	f.Add(Pointer{Serial: 1}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePointer(b)
		if err == nil && !bytes.Equal(p.Encode(), b) {
			t.Fatalf("%x parsed as %+v, which encodes as %x", b, p, p.Encode())
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	b, _ := EncodeBundle([][]byte{[]byte("a"), []byte("bc")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := ParseBundle(b)
		if err != nil {
			return
		}
		again, err := EncodeBundle(items)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x does not survive a round trip: %x %v", b, again, err)
		}
	})
}
