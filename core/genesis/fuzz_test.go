package genesis

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	good, err := example(f).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(Header + "\n"))
	f.Add([]byte(Header + "\nname x\nthreshold 01\nauthority a b c d\nstun [::1%eth0]:1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		again, err := g.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q, which encodes as %q (%v)", b, again, err)
		}
	})
}
