package link

import (
	"bytes"
	"testing"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// FuzzReceive feeds arbitrary datagrams to a live node's packet handler. Nothing may panic, every
// datagram is counted, and nothing but the one genuine sealed seed may be delivered.
func FuzzReceive(f *testing.F) {
	a := newTestNode(f)
	var delivered [][]byte
	b := newTestNode(f, withConfig(func(c *Config) {
		c.OnMessage = func(_ *Link, msg []byte) { delivered = append(delivered, bytes.Clone(msg)) }
	}))
	la := dial(f, a, b)
	lb := b.peerLink(f, a.pub)
	from := lb.RemoteAddr()
	s := la.current.Load()

	var seal packetBuf
	genuine := []byte("genuine")
	f.Add(bytes.Clone(s.seal(seal.data[:], &seal.nonce, s.sendCounter.Add(1)-1, genuine, 0)))
	p := startHandshake(f)
	f.Add(appendInitiation(nil, &p.init))
	resp := randomResponse()
	f.Add(appendResponse(nil, &resp))
	f.Add(junkInitiation(b.pub, true)) // the right mac1: on to the budgets, or a cookie reply
	cr := randomCookieReply()
	f.Add(appendCookieReply(nil, &cr))
	f.Add([]byte{typeTransport, 0, 0, 0})
	f.Add([]byte{})

	var r reader
	buf := make([]byte, udp.SlotSize)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := b.Stats().PacketsIn
		delivered = delivered[:0]
		n := copy(buf, pkt)
		b.handlePacket(&r, buf[:n], from)
		if got := b.Stats().PacketsIn; got != before+1 {
			t.Fatalf("packet counted %d times", got-before)
		}
		for _, d := range delivered {
			if !bytes.Equal(d, genuine) {
				t.Fatalf("delivered %q, which nobody sealed", d)
			}
		}
	})
}
