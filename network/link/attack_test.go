package link

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestReplayedTransportPacketIsDropped(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	p := newProxy(t, b.LocalAddr())
	var captured atomic.Pointer[[]byte]
	p.setHook(func(dir direction, pkt []byte) bool {
		if dir == toB && classify(pkt) == kindTransport && len(pkt) > minTransportLen {
			c := append([]byte(nil), pkt...)
			captured.CompareAndSwap(nil, &c)
		}
		return true
	})
	l := dialAt(t, a, p.addr(), b.pub)
	if err := l.Send([]byte("once")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "once" {
		t.Fatalf("got %q", d.msg)
	}
	before := b.Stats()
	p.sendToB(*captured.Load())
	eventually(t, 5*time.Second, func() bool { return b.Stats().DropReplay == before.DropReplay+1 })
	select {
	case d := <-b.msgs:
		t.Fatalf("replayed packet delivered: %q", d.msg)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestReplayedHandshakeMessagesAreRefused(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	p := newProxy(t, b.LocalAddr())
	var init, resp atomic.Pointer[[]byte]
	var responses atomic.Int64
	p.setHook(func(dir direction, pkt []byte) bool {
		c := append([]byte(nil), pkt...)
		switch classify(pkt) {
		case kindInitiation:
			init.CompareAndSwap(nil, &c)
		case kindResponse:
			resp.CompareAndSwap(nil, &c)
			responses.Add(1)
		}
		return true
	})
	dialAt(t, a, p.addr(), b.pub)
	b.peerLink(t, a.pub)

	sb := b.Stats()
	p.sendToB(*init.Load())
	eventually(t, 5*time.Second, func() bool { return b.Stats().DropReplay == sb.DropReplay+1 })
	time.Sleep(20 * time.Millisecond)
	if n := responses.Load(); n != 1 {
		t.Fatalf("b answered a replayed initiation (%d responses)", n)
	}

	sa := a.Stats()
	p.sendToA(*resp.Load())
	eventually(t, 5*time.Second, func() bool { return a.Stats().DropReplay == sa.DropReplay+1 })
	if got := a.Stats().HandshakesCompleted; got != sa.HandshakesCompleted {
		t.Fatal("a replayed response completed a handshake")
	}

	// With b's link gone, b still remembers a's newest timestamp, and refuses the old initiation.
	b.Link(a.pub).Close()
	sb = b.Stats()
	p.sendToB(*init.Load())
	eventually(t, 5*time.Second, func() bool { return b.Stats().DropReplay == sb.DropReplay+1 })
	time.Sleep(20 * time.Millisecond)
	if n := responses.Load(); n != 1 {
		t.Fatalf("b answered a replayed initiation after its link closed (%d responses)", n)
	}
}

// Every bit flipped in an initiation, a response and a transport packet is refused and counted, and
// the handshake and the message still go through afterwards. An initiation's mac2 is not tried: a
// node not under load does not look at it (cookie.go), as WireGuard does not.
func TestFlippedBitsAreDroppedAndCounted(t *testing.T) {
	a := newTestNode(t, withLimits(noLimits), withConfig(func(c *Config) { c.HandshakeRetry = 10 * time.Second }))
	b := newTestNode(t, withLimits(noLimits))
	p := newProxy(t, b.LocalAddr())
	var flippedInit, flippedResp, flippedData atomic.Bool
	// inject sends each flipped copy and waits for it to be counted, so that none is lost to a full
	// queue and each is accounted for.
	inject := func(node *testNode, send func([]byte), pkt []byte, header, covered int) {
		for _, bit := range bitsToFlip(covered, header) {
			want := accounted(node.Stats()) + 1
			send(flipBit(pkt, bit))
			eventually(t, 5*time.Second, func() bool { return accounted(node.Stats()) >= want })
		}
	}
	p.setHook(func(dir direction, pkt []byte) bool {
		switch k := classify(pkt); {
		case dir == toB && k == kindInitiation && flippedInit.CompareAndSwap(false, true):
			inject(b, p.sendToB, pkt, initiationHeaderLen, initiationMAC2At)
		case dir == toA && k == kindResponse && flippedResp.CompareAndSwap(false, true):
			inject(a, p.sendToA, pkt, responseHeaderLen, len(pkt))
		case dir == toB && k == kindTransport && len(pkt) > minTransportLen && flippedData.CompareAndSwap(false, true):
			inject(b, p.sendToB, pkt, transportHeaderLen, len(pkt))
		}
		return true
	})
	// The flipped copies go one at a time, each awaited, so this dial is slow under the race detector.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := a.Dial(ctx, p.addr(), b.pub)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the one and only")
	if err := l.Send(msg); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); !bytes.Equal(d.msg, msg) {
		t.Fatalf("got %q", d.msg)
	}
	select {
	case d := <-b.msgs:
		t.Fatalf("a flipped packet was delivered: %q", d.msg)
	case <-time.After(50 * time.Millisecond):
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("a: %+v", sa)
	t.Logf("b: %+v", sb)
	if !flippedInit.Load() || !flippedResp.Load() || !flippedData.Load() {
		t.Fatal("not every packet type was tried")
	}
	if sa.HandshakesCompleted != 1 || sb.HandshakesCompleted != 1 {
		t.Fatal("handshake did not complete exactly once on each side")
	}
	// A flipped handshake message fails mac1 before any DH; flipped transport packets fail their tag,
	// or framing, or name no session.
	if sb.DropMAC1 == 0 || sa.DropMAC1 == 0 || sb.DropBadMAC == 0 || sb.DropMalformed == 0 || sb.DropUnknownIndex == 0 {
		t.Fatal("flips were not counted under the expected reasons")
	}
}

func TestGarbageIsCountedAndHarmless(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	raw := udpLoopback(t)
	defer raw.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	for i := range n {
		pkt := make([]byte, rng.IntN(MaxPacket+100))
		for j := range pkt {
			pkt[j] = byte(rng.Uint32())
		}
		switch {
		case i%4 == 1 && len(pkt) >= minTransportLen: // well-framed transport packets
			pkt[0], pkt[1], pkt[2], pkt[3] = typeTransport, 0, 0, 0
			pkt = pkt[:min(len(pkt), MaxPacket)]
		case i%4 == 2: // well-framed initiations
			pkt = append([]byte{typeInitiation, 0, 0, 0}, make([]byte, initiationLen-4)...)
			for j := 4; j < len(pkt); j++ {
				pkt[j] = byte(rng.Uint32())
			}
		}
		if _, err := raw.WriteToUDPAddrPort(pkt, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 { // let b catch up, so the socket buffer never overflows
			eventually(t, 5*time.Second, func() bool { return accounted(b.Stats()) > uint64(i-16) })
		}
	}
	// Empty datagrams count as packets too, so every one of them is accounted for.
	eventually(t, 10*time.Second, func() bool {
		s := b.Stats()
		return s.Drops()+s.OtherIn >= n
	})
	if err := l.Send([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "still here" {
		t.Fatalf("got %q", d.msg)
	}
	s := b.Stats()
	t.Logf("%+v", s)
	if s.OtherIn == 0 || s.DropUnknownIndex == 0 || s.DropMalformed == 0 {
		t.Fatal("garbage not counted by kind")
	}
	if s.HandshakesCompleted != 1 {
		t.Fatal("garbage completed a handshake")
	}
}

// A flood of initiations from one source is mostly refused before any DH: those without b's key fail
// mac1, and those with it (a relay's key is public) get cookie replies once b is under load. Transport
// packets on an existing link keep flowing meanwhile.
func TestHandshakeFloodIsRefusedBeforeDH(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	raw := udpLoopback(t)
	defer raw.Close()
	const flood, msgs = 500, 200
	refused := func() uint64 {
		s := b.Stats()
		return s.DropMAC1 + s.DropCookie + s.DropRateLimited + s.DropBadMAC
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range flood {
			raw.WriteToUDPAddrPort(junkInitiation(b.pub, i%2 == 0), b.LocalAddr())
			if i%50 == 49 { // a flood, but not one the socket buffer itself would drop
				deadline := time.Now().Add(time.Second)
				for time.Now().Before(deadline) && refused()+100 < uint64(i) {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}
	})
	f := newFlow(b, 16)
	for i := range msgs {
		f.next()
		if err := l.Send([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for range msgs {
		b.recv(t)
	}
	eventually(t, 5*time.Second, func() bool { return refused() >= flood })
	s := b.Stats()
	t.Logf("%+v", s)
	if s.DropMAC1 != flood/2 {
		t.Fatalf("%d initiations without b's key failed mac1, want %d", s.DropMAC1, flood/2)
	}
	// The others cost a DH while the queue was short, and a cookie reply once b was under load (how
	// many of each depends on the machine's pace: TestSpoofedHandshakeFloodLetsRealHandshakesIn counts
	// them on a clock that stands still).
	if s.DropCookie+s.DropBadMAC < flood/2 {
		t.Fatalf("of %d junk initiations with b's key, %d got cookie replies and %d failed their DH", flood/2, s.DropCookie, s.DropBadMAC)
	}
}

// junkInitiation is an initiation of random bytes; withMAC1 gives it the right mac1 for a node whose
// key is to, as anyone who knows that key can.
func junkInitiation(to keys.StaticPublic, withMAC1 bool) []byte {
	pkt := make([]byte, initiationLen)
	pkt[0] = typeInitiation
	for j := 4; j < len(pkt); j++ {
		pkt[j] = byte(rand.Uint32())
	}
	clear(pkt[8:12])                                       // no rekey index
	clear(pkt[initiationMAC2At : initiationMAC2At+macLen]) // no cookie
	if withMAC1 {
		k := deriveMACKeys(to)
		sealInitiation(pkt, &k.mac1, nil)
	}
	return pkt
}
