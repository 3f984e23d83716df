package onion

import (
	"bytes"
	"testing"
)

// FuzzPeel hands arbitrary bytes to each hop of a circuit as a forward cell: each must refuse them with
// an error, unless they are the one cell the client sealed, and never panic.
func FuzzPeel(f *testing.F) {
	c := threeHops(f)
	sealed := c.wrapForward(f, SmallSize, 3, 1)
	f.Add(bytes.Clone(sealed), uint8(0))
	f.Add(make([]byte, SmallSize), uint8(2))
	f.Add([]byte{1, 2, 3}, uint8(3))
	f.Fuzz(func(t *testing.T, cell []byte, hop uint8) {
		d := int(hop%3) + 1
		if _, _, err := c.hops[d-1].Peel(make([]byte, len(cell)), cell, d < 3); err == nil && !(d == 1 && bytes.Equal(cell, sealed)) {
			t.Fatalf("hop %d accepted a cell the client did not seal", d)
		}
	})
}

// FuzzUnwrap hands arbitrary bytes to the client as a backward cell.
func FuzzUnwrap(f *testing.F) {
	c := threeHops(f)
	f.Add(c.originate(f, SmallSize, 3, 1))
	f.Add(make([]byte, FullSize))
	f.Fuzz(func(t *testing.T, cell []byte) {
		if _, _, err := c.path.Unwrap(bytes.Clone(cell), make([]byte, len(cell))); err == nil {
			t.Fatal("client accepted a cell no hop sealed")
		}
	})
}

// FuzzWrapBackward hands arbitrary bytes to a relay as a backward cell from the next hop: it may seal
// them (it cannot check inner layers) but must keep the length and never panic.
func FuzzWrapBackward(f *testing.F) {
	c := threeHops(f)
	f.Add(c.originate(f, SmallSize, 3, 1))
	f.Fuzz(func(t *testing.T, cell []byte) {
		n := len(cell)
		if err := c.hops[1].Wrap(cell); err == nil && len(cell) != n {
			t.Fatal("wrap changed the cell length")
		}
	})
}
