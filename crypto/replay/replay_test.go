package replay

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// model is a deliberately naive statement of the window semantics: a set of
// every accepted counter plus the highest one. It shares no logic with Window.
type model struct {
	seen     bool
	highest  uint64
	accepted map[uint64]bool
}

func newModel() *model { return &model{accepted: make(map[uint64]bool)} }

func (m *model) accept(c uint64) bool {
	switch {
	case !m.seen:
	case c > m.highest:
	case m.highest-c >= Size:
		return false
	case m.accepted[c]:
		return false
	}
	m.seen = true
	if c > m.highest {
		m.highest = c
	}
	m.accepted[c] = true
	return true
}

// prune drops counters the semantics can no longer consult, keeping long
// random runs cheap without changing any answer.
func (m *model) prune() {
	if !m.seen || m.highest < Size {
		return
	}
	for c := range m.accepted {
		if m.highest-c >= Size {
			delete(m.accepted, c)
		}
	}
}

type step struct {
	c    uint64
	want bool
}

const maxU = math.MaxUint64

func TestConstants(t *testing.T) {
	if WindowWords*64 != WindowBits {
		t.Fatalf("WindowWords*64 = %d, want %d", WindowWords*64, WindowBits)
	}
	if WindowWords&(WindowWords-1) != 0 {
		t.Fatalf("WindowWords = %d is not a power of two; ring indexing relies on it", WindowWords)
	}
	if Size != WindowBits-64 {
		t.Fatalf("Size = %d, want %d", Size, WindowBits-64)
	}
}

func TestZeroValue(t *testing.T) {
	var w Window
	if h, ok := w.Highest(); ok || h != 0 {
		t.Fatalf("zero Window Highest() = %d, %v; want 0, false", h, ok)
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"first zero, then dup", []step{{0, true}, {0, false}}},
		{"first zero, then one", []step{{0, true}, {1, true}, {0, false}, {1, false}}},
		{"first max, then dup", []step{{maxU, true}, {maxU, false}}},
		{"first max, then edge", []step{
			{maxU, true},
			{maxU - Size, false},
			{maxU - Size + 1, true},
			{maxU - Size + 1, false},
			{maxU - 1, true},
			{0, false},
		}},
		{"first arbitrary large", []step{{1 << 40, true}, {1<<40 - 1, true}, {1 << 40, false}}},
		{"in order", []step{{0, true}, {1, true}, {2, true}, {3, true}, {2, false}}},
		{"reordered within window", []step{{10, true}, {5, true}, {7, true}, {5, false}, {6, true}, {10, false}, {11, true}}},
		{"first counter above zero, older accepted", []step{{100, true}, {0, true}, {0, false}, {99, true}}},
		{"edge below window", []step{
			{Size + 100, true},
			{100, false},      // H - Size: too old
			{99, false},       // older still
			{101, true},       // H - Size + 1: oldest acceptable
			{101, false},      // and now a replay
			{Size + 99, true}, // H - 1
		}},
		{"edge exactly H-Size from H=Size", []step{{Size, true}, {0, false}, {1, true}}},
		{"below Size, everything down to zero ok", []step{{Size - 1, true}, {0, true}, {0, false}}},
		{"jump of one word", []step{
			{0, true}, {5, true}, {64, true},
			{0, false}, {5, false}, {1, true}, {64, false}, {65, true},
		}},
		{"jump to last bit of next word", []step{{63, true}, {127, true}, {63, false}, {64, true}, {126, true}}},
		{"jump within word", []step{{64, true}, {127, true}, {64, false}, {100, true}, {100, false}}},
		{"jump of exactly the ring", []step{
			{0, true}, {1, true},
			{WindowBits, true},             // same ring slot as 0
			{0, false},                     // too old now
			{WindowBits + 1, true},         // same slot as 1, must have been cleared
			{WindowBits + 1 - Size, false}, // H is now WindowBits+1
			{WindowBits + 2 - Size, true},
		}},
		{"jump of ring minus one word", []step{
			{0, true}, {63, true},
			{WindowBits - 64, true}, // H - 0 == Size: 0 too old
			{0, false},
			{63, false}, // already seen, and still inside the window
			{62, true},
			{1, true},
		}},
		{"jump of more than the ring", []step{
			{5, true}, {6, true},
			{5 + 10*WindowBits, true},
			{6 + 10*WindowBits, true}, // same slot as 6, must not be a stale replay
			{5 + 10*WindowBits - 1, true},
			{5, false},
		}},
		{"huge jump to max", []step{{0, true}, {maxU, true}, {maxU, false}, {maxU - 1, true}, {0, false}}},
		{"jump to max from near max", []step{{maxU - 70, true}, {maxU, true}, {maxU - 70, false}, {maxU - 69, true}, {maxU - 1, true}}},
		{"stale bits ahead after long jump", []step{
			// Set a bit in every ring slot, then jump so that slots are reused.
			{0, true}, {64, true}, {128, true}, {WindowBits - 1, true},
			{WindowBits + 64, true},
			{WindowBits + 65, true},
			{WindowBits + 128, true}, // slot of 128 must be clean
			{WindowBits + 127, true},
		}},
		{"old counter at edge after many small steps", func() []step {
			var s []step
			for i := uint64(0); i < 3*WindowBits; i += 7 {
				s = append(s, step{i, true})
			}
			h := s[len(s)-1].c
			s = append(s,
				step{h - Size, false},
				step{h - Size + 1, true},
				step{h - 7, false},
				step{h - 6, true},
			)
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			m := newModel()
			for i, s := range tt.steps {
				if got := w.Accept(s.c); got != s.want {
					t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.c, got, s.want)
				}
				// Guards the table itself against mistakes.
				if got := m.accept(s.c); got != s.want {
					t.Fatalf("step %d: model accept(%d) = %v, table says %v", i, s.c, got, s.want)
				}
				hw, okw := w.Highest()
				if hw != m.highest || okw != m.seen {
					t.Fatalf("step %d: Highest() = %d, %v; want %d, %v", i, hw, okw, m.highest, m.seen)
				}
			}
		})
	}
}

func TestReset(t *testing.T) {
	var w Window
	for _, c := range []uint64{0, 1, 500, 3} {
		if !w.Accept(c) {
			t.Fatalf("Accept(%d) = false before Reset", c)
		}
	}
	w.Reset()
	if h, ok := w.Highest(); ok || h != 0 {
		t.Fatalf("after Reset Highest() = %d, %v; want 0, false", h, ok)
	}
	// A smaller counter than before must now be a fresh first counter.
	for _, c := range []uint64{3, 0, 1, 500} {
		if !w.Accept(c) {
			t.Fatalf("Accept(%d) = false after Reset", c)
		}
	}
	if w.Accept(0) {
		t.Fatal("Accept(0) twice after Reset = true")
	}
	w.Reset()
	if !w.Accept(maxU) {
		t.Fatal("Accept(max) after second Reset = false")
	}
}

func TestCopy(t *testing.T) {
	var a Window
	a.Accept(10)
	b := a // copies must be independent: no shared backing storage
	if !b.Accept(11) {
		t.Fatal("copy rejected a fresh counter")
	}
	if !a.Accept(11) {
		t.Fatal("original saw the copy's counter")
	}
}

// genCounter draws the next counter from a mix that stresses the edges.
// Offsets behind the head are clamped at zero so that, early on, they do not
// wrap into enormous jumps; wrapping is exercised deliberately by the
// near-top cases instead.
func genCounter(r *rand.Rand, m *model, next *uint64) uint64 {
	h := m.highest
	behind := func(d uint64) uint64 {
		if d > h {
			return r.Uint64N(h/2 + 1)
		}
		return h - d
	}
	ahead := func(d uint64) uint64 {
		if d > maxU-h {
			*next = maxU
		} else {
			*next = h + d
		}
		return *next
	}
	switch k := r.IntN(1000); {
	case k < 350: // in order
		if *next < maxU {
			*next++
		}
		return *next
	case k < 500: // duplicate or small reorder behind the head
		return behind(r.Uint64N(16))
	case k < 600: // small skip ahead
		return ahead(1 + r.Uint64N(200))
	case k < 750: // around the old edge: H-Size-3 .. H-Size+3
		return behind(Size - 3 + r.Uint64N(7))
	case k < 850: // anywhere inside the window or just outside it
		return behind(r.Uint64N(Size + 64))
	case k < 900: // word-sized and ring-sized jumps
		return ahead([]uint64{64, 63, 65, 128, WindowBits, WindowBits - 64, WindowBits + 1, 3 * WindowBits}[r.IntN(8)])
	case k < 905: // near the top of the counter space
		*next = maxU - r.Uint64N(3*WindowBits)
		return *next
	case k < 910: // exactly the top
		return maxU - r.Uint64N(3)
	case k < 915: // big random jump
		*next = r.Uint64()
		return *next
	default: // fully random, usually far too old or far ahead
		return r.Uint64()
	}
}

func TestAgainstModel(t *testing.T) {
	seeds := [][2]uint64{{1, 2}, {42, 7}, {0xdeadbeef, 0xcafe}, {12345, 67890}, {9, 9}}
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	for _, seed := range seeds {
		r := rand.New(rand.NewPCG(seed[0], seed[1]))
		var w Window
		m := newModel()
		var next uint64
		if r.IntN(2) == 0 {
			next = r.Uint64N(1 << 20)
		}
		accepted := 0
		for i := 0; i < n; i++ {
			c := genCounter(r, m, &next)
			if next < m.highest {
				next = m.highest // keep "in order" meaningful after wraps
			}
			want := m.accept(c)
			if got := w.Accept(c); got != want {
				t.Fatalf("seed %v step %d: Accept(%d) = %v, model %v (highest %d)", seed, i, c, got, want, m.highest)
			}
			if want {
				accepted++
			}
			if h, ok := w.Highest(); h != m.highest || ok != m.seen {
				t.Fatalf("seed %v step %d: Highest() = %d, %v; model %d, %v", seed, i, h, ok, m.highest, m.seen)
			}
			if i%4096 == 0 {
				m.prune()
			}
			// Once the head reaches the top of the counter space nothing new can
			// be accepted, so leave it sooner than elsewhere to keep the run useful.
			nearTop := m.highest > maxU-4*WindowBits
			if r.IntN(3000) == 0 || (nearTop && r.IntN(300) == 0) {
				w.Reset()
				m = newModel()
				next = r.Uint64N(1 << 20)
			}
		}
		// Guards the generator: both outcomes must be common, or the test proves little.
		t.Logf("seed %v: %d of %d accepted", seed, accepted, n)
		if accepted < n/10 || accepted > n*9/10 {
			t.Fatalf("seed %v: %d of %d accepted; generator is unbalanced", seed, accepted, n)
		}
	}
}

// TestExhaustivePairs checks every second counter in a span around a first
// one, after first building up varied history so the ring has stale bits.
func TestExhaustivePairs(t *testing.T) {
	const margin = 70
	firsts := []uint64{
		0, 1, 63, 64, 65, Size - 1, Size, Size + 1, WindowBits - 1, WindowBits, WindowBits + 1,
		1 << 32, 1<<63 + 17, maxU - Size - margin, maxU - WindowBits, maxU - 64, maxU - 1, maxU,
	}
	histories := []struct {
		name string
		pre  func(h uint64) []uint64 // counters accepted (or not) before h
	}{
		{"fresh", func(h uint64) []uint64 { return nil }},
		{"dense behind", func(h uint64) []uint64 {
			var s []uint64
			for d := WindowBits + 200; d >= 1; d -= 3 {
				if uint64(d) <= h {
					s = append(s, h-uint64(d))
				}
			}
			return s
		}},
		{"sparse far behind", func(h uint64) []uint64 {
			var s []uint64
			for d := 5 * WindowBits; d >= 64; d -= 61 {
				if uint64(d) <= h {
					s = append(s, h-uint64(d))
				}
			}
			return s
		}},
	}
	for _, hist := range histories {
		for _, h := range firsts {
			pre := append(hist.pre(h), h)
			lo := uint64(0)
			if h >= Size+margin {
				lo = h - Size - margin
			}
			hi := uint64(maxU)
			if h <= maxU-Size-margin {
				hi = h + Size + margin
			}
			var base Window
			baseModel := newModel()
			for _, c := range pre {
				base.Accept(c)
				baseModel.accept(c)
			}
			for c := lo; ; c++ {
				w := base // Window is copyable by design; exploit it for cheap snapshots
				want := baseModel.wouldAccept(c)
				if got := w.Accept(c); got != want {
					t.Fatalf("%s: first %d, Accept(%d) = %v, model %v", hist.name, h, c, got, want)
				}
				// A second identical counter must always be refused afterwards.
				if w.Accept(c) {
					t.Fatalf("%s: first %d, Accept(%d) twice = true", hist.name, h, c)
				}
				if c == hi {
					break
				}
			}
		}
	}
}

// wouldAccept answers accept without recording, so snapshots can share state.
func (m *model) wouldAccept(c uint64) bool {
	switch {
	case !m.seen, c > m.highest:
		return true
	case m.highest-c >= Size:
		return false
	}
	return !m.accepted[c]
}

func TestAcceptAllocs(t *testing.T) {
	var w Window
	var c uint64
	allocs := testing.AllocsPerRun(1000, func() {
		c += 37
		w.Accept(c)
		w.Accept(c - 5)
		w.Accept(c + 5000)
	})
	if allocs != 0 {
		t.Fatalf("Accept allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkAccept(b *testing.B) {
	var w Window
	var c uint64
	b.ReportAllocs()
	for b.Loop() {
		if !w.Accept(c) {
			b.Fatal("in-order counter rejected")
		}
		c++
	}
}

func BenchmarkAcceptReordered(b *testing.B) {
	// A fixed permutation of offsets within small blocks, emulating packets
	// reordered by multipath links; generated once so the loop measures Accept only.
	r := rand.New(rand.NewPCG(1, 1))
	const block = 256
	perm := r.Perm(block)
	var w Window
	var base uint64
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if !w.Accept(base + uint64(perm[i])) {
			b.Fatal("reordered counter rejected")
		}
		i++
		if i == block {
			i = 0
			base += block
		}
	}
}

// FuzzWindow reads the input as 9-byte records: a mode byte and a
// little-endian uint64. The mode makes the value relative to the current
// highest counter so the fuzzer reaches the window edges and the top of the
// counter space instead of only ever sending random far-away counters.
func FuzzWindow(f *testing.F) {
	rec := func(mode byte, v uint64) []byte {
		b := make([]byte, 9)
		b[0] = mode
		binary.LittleEndian.PutUint64(b[1:], v)
		return b
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	f.Add(cat(rec(0, 0), rec(0, 0)))
	f.Add(cat(rec(0, maxU), rec(1, Size), rec(1, Size-1)))
	f.Add(cat(rec(0, 5), rec(2, WindowBits), rec(1, Size), rec(2, 64)))
	f.Add(cat(rec(0, 1000), rec(1, 3), rec(1, 3), rec(3, 0), rec(2, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var w Window
		m := newModel()
		for i := 0; len(data) >= 9; i++ {
			mode, v := data[0], binary.LittleEndian.Uint64(data[1:9])
			data = data[9:]
			var c uint64
			switch mode % 5 {
			case 0: // absolute
				c = v
			case 1: // behind the head, biased to the edge
				c = m.highest - v%(2*WindowBits)
			case 2: // ahead of the head, wrapping near the top on purpose
				c = m.highest + v%(4*WindowBits)
			case 3: // near the top of the counter space
				c = maxU - v%(2*WindowBits)
			case 4:
				w.Reset()
				m = newModel()
				continue
			}
			want := m.accept(c)
			if got := w.Accept(c); got != want {
				t.Fatalf("record %d: Accept(%d) = %v, model %v (highest %d)", i, c, got, want, m.highest)
			}
			if h, ok := w.Highest(); h != m.highest || ok != m.seen {
				t.Fatalf("record %d: Highest() = %d, %v; model %d, %v", i, h, ok, m.highest, m.seen)
			}
		}
	})
}
