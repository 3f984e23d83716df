package directory

import (
	"bytes"
	"testing"
)

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
