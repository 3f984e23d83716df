package link

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// stunRequest is a STUN Binding request header: not a link packet.
func stunRequest() []byte {
	pkt := make([]byte, 20)
	pkt[1] = 0x01
	pkt[4], pkt[5], pkt[6], pkt[7] = 0x21, 0x12, 0xA4, 0x42
	return pkt
}

// A node made by New reads nothing until Start, so that a datagram that arrives in between waits in
// the socket for the handlers registered meanwhile: none is lost to a handler that is not there yet,
// which is what the socket's owner (core/relay, cmd's STUN prober) relies on.
func TestNewReadsNothingUntilStart(t *testing.T) {
	conn := udpLoopback(t)
	n, err := New(Config{Conn: conn, Static: newStatic(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	raw := udpLoopback(t)
	defer raw.Close()
	if _, err := raw.WriteToUDPAddrPort(stunRequest(), n.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // time enough for a reader, had one started, to take it
	if s := n.Stats(); s.PacketsIn != 0 {
		t.Fatalf("a node that was not started read %d datagrams", s.PacketsIn)
	}
	var first, second atomic.Int64
	if err := n.HandleOther(func(pkt []byte, _ netip.AddrPort) bool { first.Add(1); return false }); err != nil {
		t.Fatal(err)
	}
	if err := n.HandleOther(func(pkt []byte, _ netip.AddrPort) bool { second.Add(1); return true }); err != nil {
		t.Fatal(err)
	}
	if err := n.SetHandlers(Handlers{OnMessage: func(*Link, []byte) {}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return second.Load() == 1 })
	if first.Load() != 1 {
		t.Fatalf("the first handler was offered %d datagrams, want 1 (handlers are asked in order)", first.Load())
	}
	if s := n.Stats(); s.OtherIn != 1 || s.DropOther != 0 {
		t.Fatalf("OtherIn %d, DropOther %d: want the datagram counted as taken", s.OtherIn, s.DropOther)
	}
}

// Handlers are fixed once the node reads: registering one later fails instead of racing the readers.
func TestHandlersAreFixedAtStart(t *testing.T) {
	n, err := New(Config{Conn: udpLoopback(t), Static: newStatic(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(); err == nil {
		t.Fatal("a node without OnMessage started")
	}
	if err := n.SetHandlers(Handlers{OnMessage: func(*Link, []byte) {}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	take := func([]byte, netip.AddrPort) bool { return true }
	if err := n.HandleOther(take); !errors.Is(err, ErrStarted) {
		t.Fatalf("HandleOther after Start: %v, want ErrStarted", err)
	}
	if err := n.SetHandlers(Handlers{OnMessage: func(*Link, []byte) {}}); !errors.Is(err, ErrStarted) {
		t.Fatalf("SetHandlers after Start: %v, want ErrStarted", err)
	}
	if err := n.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
}

// A node that is never started still owns its socket: Close closes it, and Start after Close fails.
func TestCloseWithoutStart(t *testing.T) {
	conn := udpLoopback(t)
	n, err := New(Config{Conn: conn, Static: newStatic(t), OnMessage: func(*Link, []byte) {}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDPAddrPort([]byte{1}, n.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("socket still open after Close: %v", err)
	}
	if err := n.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
}
