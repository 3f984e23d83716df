package authority

import (
	"bytes"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/core/descriptor"
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
	if !bytes.Equal(descriptor.Salt(id), id[:]) {
		t.Fatal("the descriptor salt is not the network id")
	}
	ds := DirectorySalt(id)
	if !strings.HasPrefix(string(ds), "directory") || !bytes.Equal(ds[len("directory"):], id[:]) || len(ds) > 64 {
		t.Fatalf("directory salt %q", ds)
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
