package directory

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// history signs documents 1..n by the authority with seed, each naming the previous one's hash.
func history(t *testing.T, seed byte, n int) []*Directory {
	var out []*Directory
	var prev [32]byte
	for i := range n {
		d, _ := signed(t, seed, document(uint64(i+1), prev, entry(byte(i), Running, uint32(i), 1)))
		prev, _ = d.Hash()
		out = append(out, d)
	}
	return out
}

// fetcher serves the documents of h by serial and counts the calls.
func fetcher(h []*Directory, calls *[]uint64) func(uint64) (*Directory, error) {
	return func(serial uint64) (*Directory, error) {
		*calls = append(*calls, serial)
		if serial == 0 || serial > uint64(len(h)) {
			return nil, fmt.Errorf("no serial %d", serial)
		}
		return h[serial-1], nil
	}
}

func TestChainWalksAGap(t *testing.T) {
	h := history(t, 1, 6)
	c := NewChain(network)
	if err := c.Advance(h[1], nil); err != nil { // first sight: trusted as it is
		t.Fatal(err)
	}
	var calls []uint64
	// Serial 2 held, serial 6 arrives: 5, 4 and 3 are fetched, and 3 names 2.
	if err := c.Advance(h[5], fetcher(h, &calls)); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[5 4 3]" {
		t.Fatalf("fetched %v", calls)
	}
	want, _ := h[5].Hash()
	if head, ok := c.Head(h[5].Authority); !ok || head.Serial != 6 || head.Hash != want {
		t.Fatalf("head %+v", head)
	}
	// The same document again is fine; the next one needs no fetch.
	if err := c.Advance(h[5], nil); err != nil {
		t.Fatal(err)
	}
	next, _ := signed(t, 1, document(7, want))
	if err := c.Advance(next, nil); err != nil {
		t.Fatal(err)
	}
}

func TestChainDetectsRollback(t *testing.T) {
	h := history(t, 1, 3)
	c := NewChain(network)
	if err := c.Advance(h[2], nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Advance(h[1], nil); !errors.Is(err, ErrRollback) {
		t.Fatalf("serial 2 after 3: %v", err)
	}
}

func TestChainDetectsForks(t *testing.T) {
	h := history(t, 1, 5)
	c := NewChain(network)
	if err := c.Advance(h[1], nil); err != nil {
		t.Fatal(err)
	}
	// Another serial 2, chained on the same serial 1.
	p, _ := h[0].Hash()
	fork2, _ := signed(t, 1, document(2, p, entry(77, Running, 1, 1)))
	if err := c.Advance(fork2, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("same serial, other document: %v", err)
	}
	// A serial 3 that names the forked serial 2.
	f2, _ := fork2.Hash()
	fork3, _ := signed(t, 1, document(3, f2))
	if err := c.Advance(fork3, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("next serial on a fork: %v", err)
	}
	// Serial 5 of the real history, but the fetcher serves the fork as serial 3: a broken link.
	var calls []uint64
	bad := fetcher(h, &calls)
	lying := func(serial uint64) (*Directory, error) {
		if serial == 3 {
			return fork3, nil
		}
		return bad(serial)
	}
	if err := c.Advance(h[4], lying); !errors.Is(err, ErrFork) {
		t.Fatalf("broken link: %v", err)
	}
	// A fork further back: a whole other history from serial 1, reaching serial 5.
	other := history(t, 1, 5)
	for _, d := range other {
		d.Entries = append(d.Entries, entry(200, Guard, 0, 0))
	}
	var prev [32]byte
	for i, d := range other {
		d.Previous = prev
		other[i], _ = signed(t, 1, d)
		prev, _ = other[i].Hash()
	}
	calls = nil
	if err := c.Advance(other[4], fetcher(other, &calls)); !errors.Is(err, ErrFork) {
		t.Fatalf("other history: %v", err)
	}
	if head, _ := c.Head(h[1].Authority); head.Serial != 2 {
		t.Fatalf("a refused document moved the head: %+v", head)
	}
	// The real history still advances.
	if err := c.Advance(h[4], fetcher(h, &calls)); err != nil {
		t.Fatal(err)
	}
}

func TestChainRefuses(t *testing.T) {
	h := history(t, 1, 2)
	c := NewChain(network)
	if err := c.Advance(h[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Advance(h[1], func(uint64) (*Directory, error) { return nil, nil }); err != nil {
		t.Fatalf("no fetch needed: %v", err)
	}
	far, _ := signed(t, 1, document(2+MaxChainWalk+1, [32]byte{1}))
	if err := c.Advance(far, func(uint64) (*Directory, error) { t.Fatal("fetched"); return nil, nil }); !errors.Is(err, ErrGap) {
		t.Fatalf("gap of %d: %v", MaxChainWalk+1, err)
	}
	gap, _ := signed(t, 1, document(4, [32]byte{1}))
	if err := c.Advance(gap, nil); err == nil {
		t.Fatal("gap walked without a fetcher")
	}
	if err := c.Advance(gap, func(uint64) (*Directory, error) { return nil, errors.New("offline") }); err == nil {
		t.Fatal("fetch failure ignored")
	}
	wrong := NewChain([32]byte{1})
	if err := wrong.Advance(h[0], nil); !errors.Is(err, ErrWrongNetwork) {
		t.Fatal(err)
	}
	h[1].Serial = 9 // changed after signing
	if err := NewChain(network).Advance(h[1], nil); err == nil {
		t.Fatal("unsigned document accepted")
	}
}

func TestChainState(t *testing.T) {
	c := NewChain(network)
	for seed := byte(1); seed <= 3; seed++ {
		for _, d := range history(t, seed, int(seed)) {
			if err := c.Advance(d, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := c.Encode()
	got, err := ParseChain(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), b) || got.NetworkID() != network || len(got.heads) != 3 {
		t.Fatalf("state does not round-trip")
	}
	// The restored chain still refuses a rollback.
	if err := got.Advance(history(t, 3, 2)[1], nil); !errors.Is(err, ErrRollback) {
		t.Fatal(err)
	}
	for name, m := range map[string][]byte{
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
		"version":   append([]byte{2}, b[1:]...),
		"unsorted": func() []byte {
			m := bytes.Clone(b)
			e := m[chainHeaderLen:]
			tmp := bytes.Clone(e[:chainEntryLen])
			copy(e, e[chainEntryLen:2*chainEntryLen])
			copy(e[chainEntryLen:], tmp)
			return m
		}(),
		"serial 0": func() []byte {
			m := bytes.Clone(b)
			clear(m[chainHeaderLen+32 : chainHeaderLen+40])
			return m
		}(),
	} {
		if _, err := ParseChain(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
