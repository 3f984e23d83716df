package link

import (
	"bytes"
	"testing"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// segments splits read as handleRead does.
func segments(read []byte, size int) [][]byte {
	var out [][]byte
	for {
		d, rest := udp.NextSegment(read, size)
		out = append(out, d)
		if len(rest) == 0 {
			return out
		}
		read = rest
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
