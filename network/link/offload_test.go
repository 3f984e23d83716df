package link

import (
	"bytes"
	"testing"
)

func lens(sizes ...int) [][]byte {
	pkts := make([][]byte, len(sizes))
	for i, s := range sizes {
		pkts[i] = make([]byte, s)
	}
	return pkts
}

func TestCoalesceRun(t *testing.T) {
	full := make([]int, 70)
	for i := range full {
		full[i] = MaxPacket
	}
	small := make([]int, 70)
	for i := range small {
		small[i] = 100
	}
	for _, c := range []struct {
		name  string
		sizes []int
		want  int
	}{
		{"one", []int{1452}, 1},
		{"equal", []int{500, 500, 500}, 3},
		{"shorter last", []int{500, 500, 200}, 3},
		{"shorter ends the run", []int{500, 200, 200}, 2},
		{"longer ends the run", []int{200, 500, 500}, 1},
		{"longer after equal", []int{500, 500, 600, 500}, 2},
		{"full packets: the byte limit", full, maxSegmentedBytes / MaxPacket},
		{"small packets: the segment limit", small, maxSegments},
		{"exactly at the byte limit", []int{13101, 13101, 13101, 13101, 13101, 2}, 6}, // 65,507 bytes
		{"a byte over the limit", []int{13101, 13101, 13101, 13101, 13101, 3}, 5},
		{"empty first", []int{0, 0, 0}, 1},
	} {
		if got := coalesceRun(lens(c.sizes...)); got != c.want {
			t.Errorf("%s: run of %d, want %d", c.name, got, c.want)
		}
	}
}

// segments splits read as handleRead does.
func segments(read []byte, size int) [][]byte {
	var out [][]byte
	for {
		d, rest := nextSegment(read, size)
		out = append(out, d)
		if len(rest) == 0 {
			return out
		}
		read = rest
	}
}

func TestNextSegment(t *testing.T) {
	b := func(n int) []byte { return bytes.Repeat([]byte{7}, n) }
	for _, c := range []struct {
		name       string
		read, size int
		want       []int
	}{
		{"not coalesced", 1452, 0, []int{1452}},
		{"even", 4356, 1452, []int{1452, 1452, 1452}},
		{"shorter last", 3000, 1452, []int{1452, 1452, 96}},
		{"one byte last", 1453, 1452, []int{1452, 1}},
		{"size above length", 100, 1452, []int{100}},
		{"size equals length", 1452, 1452, []int{1452}},
		{"empty", 0, 0, []int{0}},
		{"empty with a size", 0, 1452, []int{0}},
		{"negative size", 50, -1, []int{50}},
		{"size one", 3, 1, []int{1, 1, 1}},
	} {
		var got []int
		for _, d := range segments(b(c.read), c.size) {
			got = append(got, len(d))
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: segments %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: segments %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
}

// FuzzCoalescedRead hands the receive path what the kernel could deliver with UDP GRO: any buffer
// with any segment size. The segments must cover the buffer exactly, in order, all of the segment
// size but the last; each must be counted once; and nothing but genuine sealed packets may be
// delivered.
func FuzzCoalescedRead(f *testing.F) {
	a := newTestNode(f)
	var delivered, forged int
	genuine := make([]byte, 100)
	b := newTestNode(f, withConfig(func(c *Config) {
		c.OnMessage = func(_ *Link, msg []byte) {
			delivered++
			if !bytes.Equal(msg, genuine) {
				forged++
			}
		}
	}))
	la := dial(f, a, b)
	lb := b.peerLink(f, a.pub)
	from := lb.RemoteAddr()
	s := la.current.Load()
	var seal packetBuf
	var three []byte
	for range 3 {
		three = append(three, s.seal(seal.data[:], &seal.nonce, s.sendCounter.Add(1)-1, genuine, 0)...)
	}
	f.Add(three, uint16(len(three)/3))
	f.Add(three, uint16(len(three)/3+1))
	f.Add(three[:len(three)-5], uint16(len(three)/3))
	f.Add(three, uint16(0))
	f.Add(three, uint16(1))
	f.Add(bytes.Repeat([]byte{0xff}, 9000), uint16(3000))
	f.Add([]byte{}, uint16(5))

	var r reader
	f.Fuzz(func(t *testing.T, read []byte, size uint16) {
		segs := segments(read, int(size))
		if !bytes.Equal(bytes.Join(segs, nil), read) {
			t.Fatalf("segments do not cover the read")
		}
		for i, d := range segs[:len(segs)-1] {
			if len(d) != int(size) {
				t.Fatalf("segment %d of %d has %d bytes, segment size %d", i, len(segs), len(d), size)
			}
		}
		if last := segs[len(segs)-1]; size > 0 && len(segs) > 1 && (len(last) == 0 || len(last) > int(size)) {
			t.Fatalf("last segment has %d bytes, segment size %d", len(last), size)
		}
		before := b.Stats()
		delivered, forged = 0, 0
		b.handleRead(&r, bytes.Clone(read), int(size), from)
		after := b.Stats()
		if got := after.PacketsIn - before.PacketsIn; got != uint64(len(segs)) {
			t.Fatalf("%d segments counted as %d packets", len(segs), got)
		}
		if forged > 0 || delivered > len(segs) {
			t.Fatalf("%d messages delivered from %d segments, %d of them nobody sealed", delivered, len(segs), forged)
		}
	})
}
