package testnet

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestStreamFillIsTheSameInPieces(t *testing.T) {
	whole := make([]byte, 1000)
	StreamFill(whole, 0)
	pieces := make([]byte, 0, len(whole))
	for off := 0; off < len(whole); {
		n := min(1+off%13, len(whole)-off) // pieces that start and end anywhere in a word
		b := make([]byte, n)
		StreamFill(b, int64(off))
		pieces = append(pieces, b...)
		off += n
	}
	if !bytes.Equal(whole, pieces) {
		t.Fatal("the pattern depends on how it is cut")
	}
	// Not periodic in the small: no two of the first 1000 words are equal.
	seen := map[uint64]bool{}
	for w := range uint64(1000) {
		if seen[splitmix64(w)] {
			t.Fatalf("word %d repeats", w)
		}
		seen[splitmix64(w)] = true
	}
}

func TestStreamCheckFindsTheFirstWrongByte(t *testing.T) {
	b := make([]byte, 5000)
	StreamFill(b, 0)
	c := NewStreamCheck()
	c.Write(b[:1234])
	c.Write(b[1234:])
	if c.BadAt != -1 || c.Bytes != 5000 {
		t.Fatalf("intact stream: bad at %d, %d bytes", c.BadAt, c.Bytes)
	}
	// A lost piece: what follows arrives at the wrong offset.
	c = NewStreamCheck()
	c.Write(b[:100])
	c.Write(b[108:200])
	if c.BadAt < 100 || c.BadAt >= 108 {
		t.Fatalf("8 bytes lost at 100: bad at %d", c.BadAt)
	}
	// A flipped byte.
	c = NewStreamCheck()
	bad := bytes.Clone(b)
	bad[4321] ^= 1
	c.Write(bad)
	if c.BadAt != 4321 {
		t.Fatalf("byte 4321 flipped: bad at %d", c.BadAt)
	}
}

func TestStreamEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serveStream))
	defer srv.Close()
	const rate, secs = 150_000, 1
	resp, err := http.Get(srv.URL + "/stream?rate=" + strconv.Itoa(rate) + "&seconds=" + strconv.Itoa(secs))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != rate*secs {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	c := NewStreamCheck()
	if _, err := io.Copy(c, resp.Body); err != nil {
		t.Fatal(err)
	}
	if c.Bytes != rate*secs || c.BadAt != -1 {
		t.Fatalf("%d bytes (want %d), first wrong byte at %d", c.Bytes, rate*secs, c.BadAt)
	}
	for _, q := range []string{"", "rate=100", "seconds=1", "rate=0&seconds=1", "rate=100&seconds=0",
		"rate=100&seconds=" + strconv.Itoa(StreamMaxSeconds+1), "rate=" + strconv.Itoa(StreamMaxRate+1) + "&seconds=1", "rate=x&seconds=1"} {
		resp, err := http.Get(srv.URL + "/stream?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/stream?%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}
