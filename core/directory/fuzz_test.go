package directory

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	_, b := signed(f, 1, document(2, [32]byte{1}, entry(1, Running|Guard, 1, 1), entry(2, Exit, 2, 2)))
	f.Add(b)
	_, b = signed(f, 1, document(1, [32]byte{}))
	f.Add(b)
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, body, err := decode(b)
		if err == nil {
			again, err := d.body()
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("decoded %x, which re-encodes as %x (%v)", body, again, err)
			}
		}
		p, err := Parse(b)
		if err != nil {
			return
		}
		if again, err := p.Encode(); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes as %x (%v)", b, again, err)
		}
		if _, err := p.Verify(); err != nil {
			t.Fatalf("Parse accepted what Verify refuses: %v", err)
		}
	})
}

func FuzzParseChain(f *testing.F) {
	c := NewChain(network)
	c.heads[identity(f, 1).Public()] = Head{Serial: 3, Hash: [32]byte{3}}
	c.heads[identity(f, 2).Public()] = Head{Serial: 1, Hash: [32]byte{1}}
	f.Add(c.Encode())
	f.Add(NewChain(network).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChain(b)
		if err != nil {
			return
		}
		if again := c.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, again)
		}
	})
}
