package link

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestRoaming(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	p := newProxy(t, b.LocalAddr())
	var lastData atomic.Pointer[[]byte]
	p.setHook(func(dir direction, pkt []byte) bool {
		if dir == toB && classify(pkt) == kindTransport {
			c := append([]byte(nil), pkt...)
			lastData.Store(&c)
		}
		return true
	})
	la := dialAt(t, a, p.addr(), b.pub)
	la.Send([]byte("before"))
	b.recv(t)
	lb := b.peerLink(t, a.pub)
	if lb.RemoteAddr() != p.backAddr() {
		t.Fatalf("b sees a at %v, want %v", lb.RemoteAddr(), p.backAddr())
	}
	first := p.backAddr()

	// Neither a forged nor a replayed packet from elsewhere moves the link.
	raw := udpLoopback(t)
	defer raw.Close()
	s := b.Stats()
	captured := *lastData.Load()
	raw.WriteToUDPAddrPort(flipBit(captured, len(captured)*8-1), b.LocalAddr())
	raw.WriteToUDPAddrPort(captured, b.LocalAddr())
	eventually(t, 5*time.Second, func() bool {
		n := b.Stats()
		return n.DropBadMAC == s.DropBadMAC+1 && n.DropReplay == s.DropReplay+1
	})
	if lb.RemoteAddr() != first {
		t.Fatal("an unauthenticated packet moved the link")
	}

	moved := p.rebind()
	if err := la.Send([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "after" {
		t.Fatalf("got %q", d.msg)
	}
	if lb.RemoteAddr() != moved || moved == first {
		t.Fatalf("b sees a at %v, want the new address %v", lb.RemoteAddr(), moved)
	}
	if err := lb.Send([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if d := a.recv(t); string(d.msg) != "reply" {
		t.Fatalf("got %q", d.msg)
	}
}
