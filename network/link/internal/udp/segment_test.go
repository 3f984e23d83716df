package udp

import (
	"bytes"
	"testing"
)

// fullPacket is the length of a full link packet (link.MaxPacket).
const fullPacket = 1452

// segments splits read as a node's reader does.
func segments(read []byte, size int) [][]byte {
	var out [][]byte
	for {
		d, rest := NextSegment(read, size)
		out = append(out, d)
		if len(rest) == 0 {
			return out
		}
		read = rest
	}
}

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
		full[i] = fullPacket
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
		{"full packets: the byte limit", full, MaxSegmentedBytes / fullPacket},
		{"small packets: the segment limit", small, MaxSegments},
		{"exactly at the byte limit", []int{13101, 13101, 13101, 13101, 13101, 2}, 6}, // 65,507 bytes
		{"a byte over the limit", []int{13101, 13101, 13101, 13101, 13101, 3}, 5},
		{"empty first", []int{0, 0, 0}, 1},
	} {
		if got := CoalesceRun(lens(c.sizes...)); got != c.want {
			t.Errorf("%s: run of %d, want %d", c.name, got, c.want)
		}
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
