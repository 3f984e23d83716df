package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestMessagesBothWays(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	la := dial(t, a, b)
	if la.Peer() != b.pub || la.RemoteAddr() != b.LocalAddr() {
		t.Fatalf("link peer/addr %v %v", la.Peer(), la.RemoteAddr())
	}
	if a.Link(b.pub) != la {
		t.Fatal("Node.Link does not return the dialed link")
	}
	if again := dial(t, a, b); again != la {
		t.Fatal("a second Dial made a second link")
	}

	for _, size := range []int{1, 100, MaxMessage} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		if err := la.Send(msg); err != nil {
			t.Fatal(err)
		}
		d := b.recv(t)
		if !bytes.Equal(d.msg, msg) || d.link.Peer() != a.pub {
			t.Fatalf("b got %d bytes from %v", len(d.msg), d.link.Peer())
		}
		if err := d.link.Send(append(msg[:0:0], msg...)); err != nil {
			t.Fatal(err)
		}
		back := a.recv(t)
		if !bytes.Equal(back.msg, msg) || back.link != la {
			t.Fatal("reply corrupted or on another link")
		}
	}
	lb := b.peerLink(t, a.pub)
	if lb.RemoteAddr() != a.LocalAddr() {
		t.Fatalf("b sees a at %v, want %v", lb.RemoteAddr(), a.LocalAddr())
	}
	if again := dial(t, b, a); again != lb {
		t.Fatal("dialing back made a second link instead of using the responder's")
	}
	if err := la.Send(make([]byte, MaxMessage+1)); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("oversized Send: %v", err)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.HandshakesCompleted != 1 || sb.HandshakesCompleted != 1 || sa.Drops() != 0 || sb.Drops() != 0 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
}

func TestThreeNodes(t *testing.T) {
	nodes := []*testNode{newTestNode(t), newTestNode(t), newTestNode(t)}
	// Each pair is linked once, by the lower-numbered node.
	for i, from := range nodes {
		for _, to := range nodes[i+1:] {
			dial(t, from, to)
		}
	}
	const perPair = 200
	flows := make([]*flow, len(nodes))
	for j, to := range nodes {
		flows[j] = newFlow(to, 32)
	}
	var wg sync.WaitGroup
	for i, from := range nodes {
		for j, to := range nodes {
			if i == j {
				continue
			}
			var l *Link
			if i < j {
				l = from.Link(to.pub)
			} else {
				l = from.peerLink(t, to.pub)
			}
			wg.Go(func() {
				for k := range perPair {
					flows[j].next()
					if err := l.Send(fmt.Appendf(nil, "%d->%d #%d", i, j, k)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	for j, to := range nodes {
		seen := map[string]bool{}
		for range 2 * perPair {
			d := to.recv(t)
			var i, jj, k int
			if _, err := fmt.Sscanf(string(d.msg), "%d->%d #%d", &i, &jj, &k); err != nil || jj != j {
				t.Fatalf("node %d got %q", j, d.msg)
			}
			if d.link.Peer() != nodes[i].pub {
				t.Fatalf("node %d got %q on the link to another peer", j, d.msg)
			}
			if seen[string(d.msg)] {
				t.Fatalf("node %d got %q twice", j, d.msg)
			}
			seen[string(d.msg)] = true
		}
	}
	wg.Wait()
}

// Ten thousand messages of random sizes from eight goroutines at once arrive intact and only once.
func TestManyConcurrentMessages(t *testing.T) {
	// The window keeps the bytes in flight well inside a default loopback socket buffer (about 200 kB,
	// or some 90 full-size datagrams once the kernel's per-packet overhead is counted).
	const total, senders, window = 10000, 8, 32
	a := newTestNode(t)
	// The receiver keeps a multiset of what was sent: each arrival must match a message sent and not
	// yet received, so corruption and duplication both fail.
	var (
		mu       sync.Mutex
		pending  = map[string]int{}
		received atomic.Int64
		bad      atomic.Int64
	)
	b := newTestNode(t, withConfig(func(c *Config) {
		c.OnMessage = func(_ *Link, msg []byte) {
			mu.Lock()
			k := string(msg)
			if pending[k] == 0 {
				bad.Add(1)
			} else {
				pending[k]--
			}
			mu.Unlock()
			received.Add(1)
		}
	}))
	l := dial(t, a, b)
	f := newFlow(b, window)
	var empties atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 1))
			for range total / senders {
				msg := make([]byte, rng.IntN(MaxMessage+1))
				for i := range msg {
					msg[i] = byte(rng.Uint32())
				}
				if len(msg) == 0 {
					empties.Add(1) // a keepalive: sent, never delivered
				} else {
					mu.Lock()
					pending[string(msg)]++
					mu.Unlock()
					f.next()
				}
				if err := l.Send(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := int64(total) - empties.Load()
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // anything duplicated would have arrived by now
	got := received.Load()
	t.Logf("%d of %d non-empty messages delivered, %d empty", got, want, empties.Load())
	if bad.Load() != 0 {
		t.Fatalf("%d messages arrived corrupted or duplicated", bad.Load())
	}
	if got*1000 < want*999 {
		t.Fatalf("only %d of %d messages delivered", got, want)
	}
	if s := b.Stats(); s.DropBadMAC+s.DropReplay+s.DropMalformed != 0 {
		t.Fatalf("receiver dropped packets: %+v", s)
	}
}

func TestStunGoesToHandleOther(t *testing.T) {
	b := newTestNode(t)
	raw := udpLoopback(t)
	defer raw.Close()
	stun := make([]byte, 20)
	stun[1] = 0x01 // Binding request
	stun[4], stun[5], stun[6], stun[7] = 0x21, 0x12, 0xA4, 0x42
	raw.WriteToUDPAddrPort(stun, b.LocalAddr())
	eventually(t, 5*time.Second, func() bool { return b.other.Load() == 1 })
}

func TestWrongResponderKeyFailsDial(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	wrong := newStatic(t).Public()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	l, err := a.Dial(ctx, b.LocalAddr(), wrong)
	if !errors.Is(err, context.DeadlineExceeded) || l != nil {
		t.Fatalf("dial with the wrong key: %v, %v", l, err)
	}
	if a.Link(wrong) != nil || a.Link(b.pub) != nil {
		t.Fatal("a failed dial left a link")
	}
	if n := a.index.len(); n != 0 {
		t.Fatalf("a failed dial left %d indices", n)
	}
	a.peersMu.RLock()
	defer a.peersMu.RUnlock()
	if len(a.peers) != 0 {
		t.Fatal("a failed dial left a peer entry")
	}
	// The initiation's mac1 is keyed by the key a thinks b has: b refuses it before any DH.
	if b.Stats().DropMAC1 == 0 || a.Stats().HandshakesFailed != 1 {
		t.Fatal("failure not counted")
	}
}

func TestAcceptCanRefuse(t *testing.T) {
	a := newTestNode(t)
	var asked atomic.Int64
	b := newTestNode(t, withConfig(func(c *Config) {
		c.Accept = func(peer keys.StaticPublic) bool {
			if peer != a.pub {
				t.Errorf("Accept asked about the wrong key")
			}
			asked.Add(1)
			return false
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := a.Dial(ctx, b.LocalAddr(), b.pub); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to a refusing node: %v", err)
	}
	if asked.Load() == 0 || b.Stats().DropRefused == 0 || b.Link(a.pub) != nil || b.index.len() != 0 {
		t.Fatal("refusal not effective or not counted")
	}
}

func TestLinkClose(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := <-a.downs; d.link != l || !errors.Is(d.err, ErrClosed) {
		t.Fatalf("down: %+v", d)
	}
	l.Close()
	select {
	case d := <-a.downs:
		t.Fatalf("second OnLinkDown: %+v", d)
	case <-l.Done():
	}
	if !errors.Is(l.Send([]byte("x")), ErrClosed) || a.Link(b.pub) != nil || a.index.len() != 0 {
		t.Fatal("closed link still in use")
	}
	// A new dial makes a new link; b takes it as a rekey of the link it has.
	l2 := dial(t, a, b)
	if l2 == l {
		t.Fatal("dial returned the closed link")
	}
	if err := l2.Send([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "again" {
		t.Fatalf("got %q", d.msg)
	}
}

// A handshake from a peer that already has a link rekeys that link; it does not make a second one.
func TestIncomingHandshakeRekeysExistingLink(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	la := dial(t, a, b)
	la.Send([]byte("1"))
	b.recv(t)
	lb := b.peerLink(t, a.pub)
	old := lb.current.Load()
	// b dials a: it already has a link, so it gets that one back at once.
	if l := dial(t, b, a); l != lb {
		t.Fatal("Dial did not return the existing link")
	}
	if err := a.initiate(la, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return lb.current.Load() != old })
	la.Send([]byte("2"))
	if d := b.recv(t); d.link != lb || string(d.msg) != "2" {
		t.Fatal("message after rekey came on another link")
	}
	b.peersMu.RLock()
	n := len(b.peers)
	b.peersMu.RUnlock()
	if n != 1 || b.Stats().HandshakesCompleted != 2 {
		t.Fatalf("b has %d links and %d handshakes", n, b.Stats().HandshakesCompleted)
	}
}

// Simultaneous dials from both ends end in one link on each side.
func TestSimultaneousDials(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	var la, lb *Link
	var wg sync.WaitGroup
	wg.Go(func() { la = dial(t, a, b) })
	wg.Go(func() { lb = dial(t, b, a) })
	wg.Wait()
	if la.Send([]byte("ab")) != nil || lb.Send([]byte("ba")) != nil {
		t.Fatal("send failed")
	}
	if string(b.recv(t).msg) != "ab" || string(a.recv(t).msg) != "ba" {
		t.Fatal("wrong messages")
	}
	if a.Link(b.pub) != la || b.Link(a.pub) != lb {
		t.Fatal("more than one link per peer")
	}
}

func TestNodeCloseIsIdempotentAndClosesLinks(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if d := <-a.downs; d.link != l || !errors.Is(d.err, ErrClosed) {
		t.Fatalf("down: %+v", d)
	}
	if !errors.Is(l.Send([]byte("x")), ErrClosed) {
		t.Fatal("send after close")
	}
	if _, err := a.Dial(context.Background(), b.LocalAddr(), b.pub); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after close: %v", err)
	}
}

func TestDialCanceledByClose(t *testing.T) {
	a := newTestNode(t)
	silent := udpLoopback(t)
	defer silent.Close()
	nobody := newStatic(t).Public()
	done := make(chan error, 1)
	go func() {
		_, err := a.Dial(context.Background(), addrOf(silent), nobody)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("dial during close: %v", err)
	}
}

func TestDialRetransmits(t *testing.T) {
	a := newTestNode(t, withConfig(func(c *Config) { c.HandshakeRetry = 50 * time.Millisecond }))
	b := newTestNode(t)
	p := newProxy(t, b.LocalAddr())
	var dropped atomic.Int64
	p.setHook(func(dir direction, pkt []byte) bool {
		// Lose the first three initiations.
		return !(dir == toB && classify(pkt) == kindInitiation && dropped.Add(1) <= 3)
	})
	start := time.Now()
	dialAt(t, a, p.addr(), b.pub)
	if dropped.Load() < 4 || a.Stats().HandshakesInitiated < 4 {
		t.Fatalf("%d initiations seen", dropped.Load())
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("dial took %v: retries came faster than HandshakeRetry", took)
	}
}
