package link

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With sessions replaced every 200 ms, a steady stream in both directions loses nothing.
func TestRekeyLosesNothing(t *testing.T) {
	fast := withConfig(func(c *Config) { c.RekeyAfter = 200 * time.Millisecond })
	a, b := newTestNode(t, fast), newTestNode(t, fast)
	la := dial(t, a, b)
	if err := la.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b.recv(t)
	lb := b.peerLink(t, a.pub)

	const each = 600
	stream := func(from *Link, to *testNode, tag byte) func() {
		f := newFlow(to, 32)
		return func() {
			for i := range each {
				f.next()
				if err := from.Send([]byte{tag, byte(i >> 8), byte(i)}); err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
				time.Sleep(2 * time.Millisecond) // spread the stream over several rekey periods
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(stream(la, b, 'a'))
	wg.Go(stream(lb, a, 'b'))
	check := func(n *testNode, tag byte) {
		seen := make([]bool, each)
		for range each {
			d := n.recv(t)
			i := int(d.msg[1])<<8 | int(d.msg[2])
			if d.msg[0] != tag || seen[i] {
				t.Errorf("unexpected or repeated message %v", d.msg)
			}
			seen[i] = true
		}
	}
	check(b, 'a')
	check(a, 'b')
	wg.Wait()
	sa, sb := a.Stats(), b.Stats()
	t.Logf("a: %+v", sa)
	t.Logf("b: %+v", sb)
	if sa.HandshakesCompleted < 4 || sb.HandshakesCompleted < 4 {
		t.Fatalf("only %d/%d handshakes completed over 6 rekey periods", sa.HandshakesCompleted, sb.HandshakesCompleted)
	}
	if a.Link(b.pub) != la || b.Link(a.pub) != lb {
		t.Fatal("rekeying replaced the links")
	}
	if n := a.index.len(); n > 3 {
		t.Fatalf("a holds %d indices: old sessions are not retired", n)
	}
}

// Past 2^60 messages the sender asks for a new handshake.
func TestRekeyAfterMessages(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	before := a.Stats().HandshakesInitiated
	l.current.Load().sendCounter.Store(rekeyAfterMessages)
	if err := l.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool {
		s := l.current.Load()
		return a.Stats().HandshakesInitiated > before && s != nil && s.sendCounter.Load() < rekeyAfterMessages
	})
}

// A responder keeps sending under its old session until the initiator's first packet under the new
// one arrives, so a rekey whose confirmation is delayed loses nothing in either direction.
func TestResponderWaitsForConfirmation(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	p := newProxy(t, b.LocalAddr())
	la := dialAt(t, a, p.addr(), b.pub)
	la.Send([]byte("up"))
	b.recv(t)
	lb := b.peerLink(t, a.pub)
	old := lb.current.Load()

	var hold atomic.Bool
	var held [][]byte
	var mu sync.Mutex
	p.setHook(func(dir direction, pkt []byte) bool {
		if dir == toB && classify(pkt) == kindTransport && hold.Load() {
			mu.Lock()
			held = append(held, append([]byte(nil), pkt...))
			mu.Unlock()
			return false
		}
		return true
	})
	hold.Store(true)
	if err := a.initiate(la, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return la.current.Load().localIndex != old.remoteIndex })
	eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) > 0 })
	if lb.current.Load() != old {
		t.Fatal("b switched to an unconfirmed session")
	}
	if err := lb.Send([]byte("still old")); err != nil {
		t.Fatal(err)
	}
	if d := a.recv(t); string(d.msg) != "still old" {
		t.Fatalf("got %q", d.msg)
	}
	// Release the initiator's keepalive: b confirms and switches.
	hold.Store(false)
	mu.Lock()
	for _, pkt := range held {
		p.sendToB(pkt)
	}
	mu.Unlock()
	eventually(t, 5*time.Second, func() bool { return lb.current.Load() != old })
	if err := lb.Send([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if d := a.recv(t); string(d.msg) != "new" {
		t.Fatalf("got %q", d.msg)
	}
	if lb.current.Load().localIndex != la.current.Load().remoteIndex {
		t.Fatal("the two ends use different sessions")
	}
}

func TestDeadPeerIsDetected(t *testing.T) {
	const dead = time.Second
	short := withConfig(func(c *Config) { c.DeadAfter = dead })
	a, b := newTestNode(t, short), newTestNode(t, short)
	la := dial(t, a, b)
	keepalive := a.cfg.KeepaliveInterval
	b.peerLink(t, a.pub)
	closed := time.Now()
	b.Close()
	if d := <-b.downs; !errors.Is(d.err, ErrClosed) {
		t.Fatalf("b's own link went down with %v", d.err)
	}
	var down linkDown
	select {
	case down = <-a.downs:
	case <-time.After(dead + keepalive + time.Second):
		t.Fatal("OnLinkDown never called")
	}
	took := down.at.Sub(closed)
	t.Logf("declared dead %v after the peer closed (DeadAfter %v, keepalive %v)", took, dead, keepalive)
	if down.link != la || !errors.Is(down.err, ErrDead) {
		t.Fatalf("down: %+v", down)
	}
	// The last packet from b left at most a keepalive interval (and a timer tick) before b closed, and
	// a notices within a tick of DeadAfter passing.
	if lo, hi := dead-keepalive-b.times.tick, dead+keepalive; took < lo || took > hi {
		t.Fatalf("declared dead after %v, want within [%v, %v]", took, lo, hi)
	}
	select {
	case <-la.Done():
	default:
		t.Fatal("Done not closed")
	}
	if a.Link(b.pub) != nil || !errors.Is(la.Send([]byte("x")), ErrClosed) {
		t.Fatal("dead link still usable")
	}
	select {
	case d := <-a.downs:
		t.Fatalf("OnLinkDown called twice: %+v", d)
	case <-time.After(2 * a.times.tick):
	}
}

func TestKeepalivesHoldQuietLinkOpen(t *testing.T) {
	short := withConfig(func(c *Config) { c.DeadAfter = 500 * time.Millisecond })
	a, b := newTestNode(t, short), newTestNode(t, short)
	la := dial(t, a, b)
	lb := b.peerLink(t, a.pub)
	time.Sleep(1500 * time.Millisecond)
	select {
	case d := <-a.downs:
		t.Fatalf("quiet link died: %v", d.err)
	case d := <-b.downs:
		t.Fatalf("quiet link died: %v", d.err)
	default:
	}
	if a.Link(b.pub) != la || b.Link(a.pub) != lb || a.Stats().PacketsOut < 3 {
		t.Fatal("link gone or no keepalives sent")
	}
}

// fakeClock is time.Now moved forward by an adjustable offset.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// A session past its age limit is used no more, in either direction, even while no new one can be
// made; once handshakes get through again the link moves to a new session.
func TestExpiredSessionIsNotUsed(t *testing.T) {
	var clock fakeClock
	cfg := withConfig(func(c *Config) {
		c.Now = clock.now
		c.RekeyAfter = time.Second
		c.HandshakeRetry = 100 * time.Millisecond
	})
	a, b := newTestNode(t, cfg), newTestNode(t, cfg)
	p := newProxy(t, b.LocalAddr())
	var blockHandshakes atomic.Bool
	p.setHook(func(dir direction, pkt []byte) bool {
		k := classify(pkt)
		return !(blockHandshakes.Load() && (k == kindInitiation || k == kindResponse))
	})
	la := dialAt(t, a, p.addr(), b.pub)
	la.Send([]byte("up"))
	b.recv(t)
	old := la.current.Load()

	blockHandshakes.Store(true)
	clock.offset.Store(int64(a.times.rejectAfter))
	if err := la.Send([]byte("late")); !errors.Is(err, ErrNoSession) {
		t.Fatalf("send on an expired session: %v", err)
	}
	// A packet sealed under the expired session is refused.
	var buf packetBuf
	pkt := old.seal(buf.data[:], &buf.nonce, old.sendCounter.Add(1)-1, []byte("old"), 0)
	before := b.Stats().DropUnknownIndex
	p.sendToB(pkt)
	eventually(t, 5*time.Second, func() bool { return b.Stats().DropUnknownIndex >= before+1 }) // keepalives under the old session may be refused too

	blockHandshakes.Store(false)
	eventually(t, 5*time.Second, func() bool { s := la.current.Load(); return s != nil && s != old })
	if err := la.Send([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "new" {
		t.Fatalf("got %q", d.msg)
	}
	if a.index.session(old.localIndex) == old {
		t.Fatal("the expired session is still in the index")
	}
}
