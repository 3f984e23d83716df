package relay

import (
	"crypto/cipher"
	crand "crypto/rand"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/link"
)

// sealLink is a fake link whose Send does the crypto a real link does to a cell: one
// ChaCha20-Poly1305 seal of the whole message. It sends nothing.
type sealLink struct {
	peer  keys.StaticPublic
	aead  cipher.AEAD
	out   [1600]byte
	nonce [12]byte
	sent  atomic.Uint64
}

func (l *sealLink) Send(msg []byte) error {
	l.aead.Seal(l.out[:0], l.nonce[:], msg, nil)
	l.sent.Add(1)
	return nil
}

func (l *sealLink) SendBatch(msgs [][]byte) (int, error) {
	for _, m := range msgs {
		_ = l.Send(m)
	}
	return len(msgs), nil
}

func (l *sealLink) Peer() keys.StaticPublic { return l.peer }

func newSealLink(b testing.TB) *sealLink {
	a, err := onion.ChaCha20Poly1305.NewAEAD(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	l := &sealLink{aead: a}
	crand.Read(l.peer[:])
	return l
}

func newBenchRelay(b testing.TB) *Relay {
	return startRelay(b, link.Config{}, Config{})
}

// BenchmarkForwardCell is one relay forwarding full cells in the middle of a circuit, on one core:
// the link open of the incoming packet (done here as the link layer would), the engine (parse, table
// lookup, layer removal, scheduling) and the link seal of the outgoing packet (in the fake link). No
// sockets: it measures the work per cell that the relay's CPU must do.
func BenchmarkForwardCell(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := newBenchRelay(b)
	prev, next := newSealLink(b), newSealLink(b)
	var k onion.HopKeys
	k.Suite = onion.ChaCha20Poly1305
	crand.Read(k.Forward[:])
	crand.Read(k.Backward[:])
	var client onion.Path
	guardKeys := k
	crand.Read(guardKeys.Forward[:])
	_ = client.AddHop(guardKeys)
	_ = client.AddHop(k)
	_ = client.AddHop(k)
	guard, _ := onion.NewHop(guardKeys, 1)

	const batch = 256
	msgs := make([][]byte, batch)
	for i := range msgs {
		body := make([]byte, onion.FullSize)
		if err := client.Wrap(body, 3); err != nil {
			b.Fatal(err)
		}
		msgs[i] = make([]byte, cell.HeaderLen+onion.FullSize)
		cell.PutHeader(msgs[i], cell.Header{Circuit: 7, Command: cell.Relay})
		if _, _, err := guard.Peel(msgs[i][cell.HeaderLen:], body, true); err != nil {
			b.Fatal(err)
		}
	}
	linkAEAD, _ := onion.ChaCha20Poly1305.NewAEAD(make([]byte, 32))
	sealed := make([][]byte, batch) // the packets as the link layer receives them
	var nonce [12]byte
	for i := range msgs {
		sealed[i] = linkAEAD.Seal(nil, nonce[:], msgs[i], nil)
	}
	inbox := make([]byte, len(msgs[0]))

	hop, _ := onion.NewHop(k, 2)
	c := &circuit{seq: r.seq.Add(1), prev: end{prev, 7}, depth: 2, hop: hop, done: make(chan struct{})}
	c.next.Store(&end{next, 9})
	c.touch()
	r.tab.add(c.prev, c)
	b.SetBytes(onion.FullSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 && i > 0 {
			// Fresh layer state (and replay window), so that the same cells pass again.
			hop, _ := onion.NewHop(k, 2)
			c.fwdMu.Lock()
			c.hop = hop
			c.fwdMu.Unlock()
		}
		if _, err := linkAEAD.Open(inbox[:0], nonce[:], sealed[i%batch], nil); err != nil {
			b.Fatal(err)
		}
		r.onMessage(prev, inbox)
		if i%64 == 63 {
			runtime.Gosched() // let the scheduler's drain goroutine send, as the OS would
		}
	}
	for next.sent.Load()+r.stats.queueFull.Load() < uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	if r.stats.queueFull.Load() > uint64(b.N)/100 {
		b.Fatalf("%d of %d cells dropped by the scheduler", r.stats.queueFull.Load(), b.N)
	}
}

// BenchmarkForwardCellRaw is the crypto limit for the same work on one core: a link open, a layer open
// and a link seal of one full cell with ChaCha20-Poly1305.
func BenchmarkForwardCellRaw(b *testing.B) {
	a, _ := onion.ChaCha20Poly1305.NewAEAD(make([]byte, 32))
	var nonce [12]byte
	msg := make([]byte, cell.HeaderLen+onion.FullSize)
	sealed := a.Seal(nil, nonce[:], msg, nil)
	layer := a.Seal(nil, nonce[:], msg[:onion.FullSize-onion.Overhead], nil)
	out := make([]byte, len(sealed))
	b.SetBytes(onion.FullSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Open(out[:0], nonce[:], sealed, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Open(out[:0], nonce[:], layer, nil); err != nil {
			b.Fatal(err)
		}
		a.Seal(out[:0], nonce[:], msg, nil)
	}
}
