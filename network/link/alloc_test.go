package link

import (
	"testing"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// The send path allocates nothing: the packet buffer and nonce come from a pool, counters are atomics.
func TestSendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	a := newTestNode(t)
	b := newTestNode(t, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
	l := dial(t, a, b)
	msg := make([]byte, MaxMessage)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := l.Send(msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Send allocates %v times per message", allocs)
	}
}

// The receive path of a transport packet allocates nothing: it decrypts in place in the reader's
// buffer and finds the session under a read lock.
func TestReceiveDoesNotAllocate(t *testing.T) {
	a := newTestNode(t)
	var delivered int
	b := newTestNode(t, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) { delivered++ } }))
	la := dial(t, a, b)
	lb := b.peerLink(t, a.pub)
	s := la.current.Load()
	from := lb.RemoteAddr()
	var r reader
	var seal packetBuf
	var buf [udp.SlotSize]byte
	msg := make([]byte, 1413)
	runs := 0
	allocs := testing.AllocsPerRun(1000, func() {
		runs++
		counter := s.sendCounter.Add(1) - 1
		pkt := s.seal(seal.data[:], &seal.nonce, counter, msg, 0)
		n := copy(buf[:], pkt)
		b.handlePacket(&r, buf[:n], from)
	})
	if allocs != 0 {
		t.Fatalf("receiving a transport packet allocates %v times", allocs)
	}
	if delivered != runs {
		t.Fatalf("%d of %d packets delivered: the test did not exercise the receive path", delivered, runs)
	}
}
