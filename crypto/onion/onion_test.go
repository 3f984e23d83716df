package onion

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// circuit is a client path and the relays' hops of one test circuit.
type circuit struct {
	path *Path
	hops []*Hop
}

func testKeys(r *rand.ChaCha8, s Suite) HopKeys {
	k := HopKeys{Suite: s}
	r.Read(k.Forward[:])
	r.Read(k.Backward[:])
	return k
}

func newCircuit(t testing.TB, seed uint64, suites ...Suite) *circuit {
	t.Helper()
	r := rand.NewChaCha8([32]byte{byte(seed)})
	c := &circuit{path: &Path{}}
	for i, s := range suites {
		k := testKeys(r, s)
		h, err := NewHop(k, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.path.AddHop(k); err != nil {
			t.Fatal(err)
		}
		c.hops = append(c.hops, h)
	}
	return c
}

func threeHops(t testing.TB) *circuit {
	return newCircuit(t, 1, ChaCha20Poly1305, AES256GCM, ChaCha20Poly1305)
}

func payload(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

// sendForward wraps a payload for hop target and runs it through the relays, from hop `from` on, and
// returns the hop where it ended and its payload. snapshots receives the cell as it is on each link.
func (c *circuit) wrapForward(t testing.TB, size, target int, seed byte) []byte {
	t.Helper()
	cell := make([]byte, size)
	copy(cell, payload(PayloadLen(size, target), seed))
	if err := c.path.Wrap(cell, target); err != nil {
		t.Fatal(err)
	}
	return cell
}

// forward runs a cell that is on the link into hop `from` through the relays until one reads it. It
// returns the depth that read it and the payload.
func (c *circuit) forward(cell []byte, from int) (int, []byte, error) {
	src := bytes.Clone(cell)
	dst := make([]byte, len(cell))
	for d := from; d <= len(c.hops); d++ {
		disp, p, err := c.hops[d-1].Peel(dst, src, d < len(c.hops))
		if err != nil {
			return d, nil, err
		}
		if len(dst) != len(cell) {
			return d, nil, fmt.Errorf("hop %d changed the cell size", d)
		}
		if disp == Here {
			return d, p, nil
		}
		src, dst = dst, src
	}
	return 0, nil, errors.New("cell passed the last hop")
}

// backward originates a payload at hop origin, returns the cell as it is on the link from origin.
func (c *circuit) originate(t testing.TB, size, origin int, seed byte) []byte {
	t.Helper()
	cell := make([]byte, size)
	for i := range cell {
		cell[i] = 0xee // dirt the origin must overwrite
	}
	copy(cell, payload(PayloadLen(size, origin), seed))
	if err := c.hops[origin-1].Originate(cell); err != nil {
		t.Fatal(err)
	}
	return cell
}

// backward carries a cell that is on the link out of hop `from` (towards the client) through the
// remaining relays and the client.
func (c *circuit) backward(cell []byte, from int) (int, []byte, error) {
	cell = bytes.Clone(cell)
	for d := from - 1; d >= 1; d-- {
		if err := c.hops[d-1].Wrap(cell); err != nil {
			return d, nil, err
		}
	}
	return c.path.Unwrap(cell, make([]byte, len(cell)))
}

func TestRoundTripEveryTargetAndSize(t *testing.T) {
	for _, size := range DefaultSizes {
		c := threeHops(t)
		for round := range 3 {
			for target := 1; target <= 3; target++ {
				seed := byte(round*10 + target)
				cell := c.wrapForward(t, size, target, seed)
				if len(cell) != size {
					t.Fatalf("wrapped cell is %d bytes, want %d", len(cell), size)
				}
				got, p, err := c.forward(cell, 1)
				if err != nil {
					t.Fatalf("size %d target %d: %v", size, target, err)
				}
				if got != target || !bytes.Equal(p, payload(PayloadLen(size, target), seed)) {
					t.Fatalf("size %d: cell for hop %d read by hop %d, payload equal %v", size, target, got, bytes.Equal(p, payload(PayloadLen(size, target), seed)))
				}

				back := c.originate(t, size, target, seed+100)
				from, p, err := c.backward(back, target)
				if err != nil {
					t.Fatalf("backward from %d: %v", target, err)
				}
				if from != target || !bytes.Equal(p, payload(PayloadLen(size, target), seed+100)) {
					t.Fatalf("backward cell from hop %d read as from %d", target, from)
				}
			}
		}
	}
}

// TestEveryBitFlipIsRejected flips each bit of a full cell, one at a time, on every link of the
// circuit in both directions; each modified cell must fail before or at the circuit's end, and the
// unmodified cell must still pass afterwards.
func TestEveryBitFlipIsRejected(t *testing.T) {
	c := threeHops(t)
	const size = FullSize
	hops := len(c.hops)

	// Forward: the cell on the link into hop `at`.
	for at := 1; at <= hops; at++ {
		cell := c.wrapForward(t, size, hops, byte(at))
		for d := 1; d < at; d++ { // carry it to the link into hop `at`
			dst := make([]byte, size)
			if _, _, err := c.hops[d-1].Peel(dst, cell, true); err != nil {
				t.Fatal(err)
			}
			cell = dst
		}
		for bit := range size * 8 {
			flipped := bytes.Clone(cell)
			flipped[bit/8] ^= 1 << (bit % 8)
			if d, _, err := c.forward(flipped, at); err == nil {
				t.Fatalf("forward: flip of bit %d on the link into hop %d was accepted by hop %d", bit, at, d)
			}
		}
		if d, p, err := c.forward(cell, at); err != nil || d != hops || !bytes.Equal(p, payload(PayloadLen(size, hops), byte(at))) {
			t.Fatalf("forward: unmodified cell on link into hop %d: hop %d, %v", at, d, err)
		}
	}

	// Backward: the cell on the link out of hop `at` (at = hops is the exit's own output).
	for at := hops; at >= 1; at-- {
		cell := c.originate(t, size, hops, byte(at))
		for d := hops - 1; d >= at; d-- {
			if err := c.hops[d-1].Wrap(cell); err != nil {
				t.Fatal(err)
			}
		}
		for bit := range size * 8 {
			flipped := bytes.Clone(cell)
			flipped[bit/8] ^= 1 << (bit % 8)
			if _, _, err := c.backward(flipped, at); err == nil {
				t.Fatalf("backward: flip of bit %d on the link out of hop %d was accepted", bit, at)
			}
		}
		if d, p, err := c.backward(cell, at); err != nil || d != hops || !bytes.Equal(p, payload(PayloadLen(size, hops), byte(at))) {
			t.Fatalf("backward: unmodified cell out of hop %d: from %d, %v", at, d, err)
		}
	}
}

func TestReplayIsRejected(t *testing.T) {
	c := threeHops(t)
	cell := c.wrapForward(t, FullSize, 3, 1)
	if _, _, err := c.forward(cell, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.forward(cell, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed forward cell: %v, want ErrReplay", err)
	}

	// A hop that replays what it forwards is caught by the next one.
	cell = c.wrapForward(t, FullSize, 3, 2)
	out := make([]byte, FullSize)
	if _, _, err := c.hops[0].Peel(out, cell, true); err != nil {
		t.Fatal(err)
	}
	if d, _, err := c.forward(out, 2); err != nil || d != 3 {
		t.Fatal(d, err)
	}
	if d, _, err := c.forward(out, 2); !errors.Is(err, ErrReplay) || d != 2 {
		t.Fatalf("cell replayed by hop 1: hop %d %v, want ErrReplay at hop 2", d, err)
	}

	back := c.originate(t, FullSize, 3, 3)
	wrapped := bytes.Clone(back)
	for d := 2; d >= 1; d-- {
		if err := c.hops[d-1].Wrap(wrapped); err != nil {
			t.Fatal(err)
		}
	}
	scratch := make([]byte, FullSize)
	if _, _, err := c.path.Unwrap(bytes.Clone(wrapped), scratch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.path.Unwrap(bytes.Clone(wrapped), scratch); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed backward cell: %v, want ErrReplay", err)
	}
	// The exit's cell replayed by the middle gets fresh outer layers, and the client still refuses it.
	if _, _, err := c.backward(back, 3); !errors.Is(err, ErrReplay) {
		t.Fatalf("exit cell replayed under fresh outer layers: %v, want ErrReplay", err)
	}
}

func TestReorderedCellsAreAccepted(t *testing.T) {
	c := threeHops(t)
	var cells [][]byte
	for i := range 50 {
		cells = append(cells, c.wrapForward(t, SmallSize, 3, byte(i)))
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(cells), func(i, j int) { cells[i], cells[j] = cells[j], cells[i] })
	for _, cell := range cells {
		if _, _, err := c.forward(cell, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTargetIsHiddenFromEarlierHops(t *testing.T) {
	// A cell for hop 2 looks onward to hop 1; hop 2 reads it; a cell for hop 3 does not stop at hop 2.
	c := threeHops(t)
	cell := c.wrapForward(t, SmallSize, 2, 1)
	dst := make([]byte, SmallSize)
	disp, _, err := c.hops[0].Peel(dst, cell, true)
	if err != nil || disp != Onward {
		t.Fatalf("hop 1: %v %v, want Onward", disp, err)
	}
	disp, _, err = c.hops[1].Peel(make([]byte, SmallSize), dst, true)
	if err != nil || disp != Here {
		t.Fatalf("hop 2: %v %v, want Here", disp, err)
	}
	// A last hop refuses a cell that was sealed as passing through it.
	c = newCircuit(t, 2, ChaCha20Poly1305, ChaCha20Poly1305)
	cell = c.wrapForward(t, SmallSize, 2, 1)
	if _, _, err := c.hops[0].Peel(make([]byte, SmallSize), cell, false); !errors.Is(err, ErrAuth) {
		t.Fatalf("hop 1 without a next hop read a cell for hop 2: %v", err)
	}
}

func TestNonzeroPaddingIsMalformed(t *testing.T) {
	c := threeHops(t)
	cell := c.wrapForward(t, SmallSize, 3, 1)
	dst := make([]byte, SmallSize)
	if _, _, err := c.hops[0].Peel(dst, cell, true); err != nil {
		t.Fatal(err)
	}
	dst[SmallSize-1] ^= 1
	if _, _, err := c.hops[1].Peel(make([]byte, SmallSize), dst, true); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nonzero forward padding: %v, want ErrMalformed", err)
	}
	back := c.originate(t, SmallSize, 3, 1)
	back[SmallSize-1] ^= 1
	if err := c.hops[1].Wrap(back); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nonzero backward padding: %v, want ErrMalformed", err)
	}
}

func TestBadLengthsAreErrorsNotPanics(t *testing.T) {
	c := threeHops(t)
	for _, n := range []int{0, 1, 23, 24, 3*Overhead + MinPayload - 1, FullSize + 1, 4096} {
		cell := make([]byte, n)
		if _, _, err := c.hops[2].Peel(make([]byte, n), cell, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("Peel of %d bytes: %v", n, err)
		}
		if err := c.hops[2].Originate(cell); n < 3*Overhead+MinPayload && !errors.Is(err, ErrMalformed) {
			t.Errorf("Originate of %d bytes: %v", n, err)
		}
		if _, _, err := c.path.Unwrap(cell, make([]byte, n)); err == nil {
			t.Errorf("Unwrap of %d zero bytes succeeded", n)
		}
	}
	if _, _, err := c.hops[0].Peel(make([]byte, 10), make([]byte, SmallSize), true); !errors.Is(err, ErrMalformed) {
		t.Errorf("Peel into a short destination: %v", err)
	}
	if err := c.path.Wrap(make([]byte, SmallSize), 4); err == nil {
		t.Error("Wrap to a hop the path does not have succeeded")
	}
}

func TestSizesValidate(t *testing.T) {
	if err := DefaultSizes.Validate(); err != nil {
		t.Fatal(err)
	}
	err := Sizes{100, 2000, 1500}.Validate()
	if err == nil {
		t.Fatal("bad classes accepted")
	}
	// Every problem is reported at once: too small, too big twice, and out of order.
	if n := bytes.Count([]byte(err.Error()), []byte("\n")) + 1; n != 4 {
		t.Fatalf("got %d problems, want 4:\n%v", n, err)
	}
	if n, ok := DefaultSizes.For(100, 3); !ok || n != SmallSize {
		t.Fatalf("For(100, 3) = %d %v", n, ok)
	}
	if n, ok := DefaultSizes.For(PayloadLen(FullSize, 3), 3); !ok || n != FullSize {
		t.Fatalf("For(full payload) = %d %v", n, ok)
	}
	if _, ok := DefaultSizes.For(PayloadLen(FullSize, 3)+1, 3); ok {
		t.Fatal("For accepted a payload larger than a full cell")
	}
}

func TestLayerOperationsDoNotAllocate(t *testing.T) {
	c := threeHops(t)
	cell := make([]byte, FullSize)
	a := make([]byte, FullSize)
	b := make([]byte, FullSize)
	allocs := testing.AllocsPerRun(200, func() {
		if err := c.path.Wrap(cell, 3); err != nil {
			t.Fatal(err)
		}
		src, dst := cell, a
		for d := 1; d <= 3; d++ {
			if _, _, err := c.hops[d-1].Peel(dst, src, d < 3); err != nil {
				t.Fatal(err)
			}
			src, dst = dst, b
		}
		if err := c.hops[2].Originate(cell); err != nil {
			t.Fatal(err)
		}
		for d := 2; d >= 1; d-- {
			if err := c.hops[d-1].Wrap(cell); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := c.path.Unwrap(cell, a); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a round trip of layer operations allocates %.1f times", allocs)
	}
}
