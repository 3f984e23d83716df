package descriptor

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	d := example(f)
	f.Add(sign(f, d, 1))
	d.IPv6 = true
	f.Add(sign(f, d, 1))
	d.IPv6 = false
	d.Exit.TCP, d.Exit.UDP = nil, nil
	d.Family, d.Country, d.Region, d.Software = nil, "", "", ""
	d.Rendezvous = d.Rendezvous[:1]
	f.Add(sign(f, d, 1))
	d.Rendezvous = nil
	f.Add(sign(f, d, 1))
	f.Add([]byte{Version})
	f.Add(make([]byte, minLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The decoder without the signature check: whatever it accepts is exactly what the encoder writes.
		d, body, err := decode(b)
		if err == nil {
			again, err := d.body()
			if err != nil {
				t.Fatalf("decoded a descriptor that does not encode: %v", err)
			}
			if !bytes.Equal(again, body) {
				t.Fatalf("decoded %x, which re-encodes as %x", body, again)
			}
		}
		p, err := Parse(b)
		if err != nil {
			return
		}
		again, err := p.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes as %x (%v)", b, again, err)
		}
		if len(b) > MaxSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}
