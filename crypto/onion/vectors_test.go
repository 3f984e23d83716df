package onion

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in ../testdata from this implementation")

const vectorsPath = "../testdata/onion.json"

// vector is one known-answer cell: fixed hop keys, a payload sealed by the client for the last hop and
// one sealed by the last hop for the client, and the exact bytes on every link.
type vector struct {
	Suites   []int    `json:"suites"`
	Forward  []string `json:"keys_forward"`
	Backward []string `json:"keys_backward"`
	Size     int      `json:"cell_size"`
	Payload  string   `json:"payload"`
	// ForwardLinks[i] is the cell on the link into hop i+1; BackwardLinks[i] the cell on the link out
	// of hop i+1 towards the client.
	ForwardLinks  []string `json:"forward_links"`
	BackwardLinks []string `json:"backward_links"`
}

func (v *vector) circuit(t *testing.T) *circuit {
	t.Helper()
	c := &circuit{path: &Path{}}
	for i, s := range v.Suites {
		k := HopKeys{Suite: Suite(s)}
		copy(k.Forward[:], unhex(t, v.Forward[i]))
		copy(k.Backward[:], unhex(t, v.Backward[i]))
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

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// links computes the bytes of the vector's cells on every link.
func (v *vector) links(t *testing.T) (fwd, bwd []string) {
	c := v.circuit(t)
	hops := len(c.hops)
	p := unhex(t, v.Payload)

	cell := make([]byte, v.Size)
	copy(cell, p)
	if err := c.path.Wrap(cell, hops); err != nil {
		t.Fatal(err)
	}
	for d := 1; d <= hops; d++ {
		fwd = append(fwd, hex.EncodeToString(cell))
		dst := make([]byte, v.Size)
		if _, _, err := c.hops[d-1].Peel(dst, cell, d < hops); err != nil {
			t.Fatal(err)
		}
		cell = dst
	}
	cell = make([]byte, v.Size)
	copy(cell, p)
	if err := c.hops[hops-1].Originate(cell); err != nil {
		t.Fatal(err)
	}
	bwd = make([]string, hops)
	for d := hops; d >= 1; d-- {
		if d < hops {
			if err := c.hops[d-1].Wrap(cell); err != nil {
				t.Fatal(err)
			}
		}
		bwd[d-1] = hex.EncodeToString(cell)
	}
	return fwd, bwd
}

// TestKnownAnswerVectors recomputes the cells in testdata and compares every byte on every link.
func TestKnownAnswerVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 2 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for i := range vs {
		fwd, bwd := vs[i].links(t)
		for j := range fwd {
			if fwd[j] != vs[i].ForwardLinks[j] {
				t.Errorf("vector %d: cell on the link into hop %d differs", i, j+1)
			}
			if bwd[j] != vs[i].BackwardLinks[j] {
				t.Errorf("vector %d: cell on the link out of hop %d differs", i, j+1)
			}
		}
	}
}

func writeVectors(t *testing.T) {
	key := func(b byte) string {
		k := make([]byte, KeySize)
		for i := range k {
			k[i] = b ^ byte(i)
		}
		return hex.EncodeToString(k)
	}
	vs := []vector{
		{Suites: []int{1, 1, 1}, Size: SmallSize},
		{Suites: []int{1, 2, 1}, Size: FullSize},
	}
	for i := range vs {
		v := &vs[i]
		for h := range v.Suites {
			v.Forward = append(v.Forward, key(byte(0x10*h+i)))
			v.Backward = append(v.Backward, key(byte(0x80+0x10*h+i)))
		}
		v.Payload = hex.EncodeToString(payload(PayloadLen(v.Size, len(v.Suites)), byte(i)))
		v.ForwardLinks, v.BackwardLinks = v.links(t)
	}
	data, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsPath, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
