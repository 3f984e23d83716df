package link

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// readFixture is a reader the test drives itself, on a socket of its own, handing datagrams to node b:
// the test calls b.readBatch instead of leaving it to b's reading goroutine.
type readFixture struct {
	a, b      *testNode
	s         *session // a's session to b: packets sealed under it are b's to open
	sock      *net.UDPConn
	r         *reader
	delivered atomic.Int64
	seal      packetBuf
	msg       []byte
}

func newReadFixture(t *testing.T) *readFixture {
	f := &readFixture{msg: make([]byte, benchSize)}
	f.a = newTestNode(t)
	f.b = newTestNode(t, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) { f.delivered.Add(1) } }))
	la := dial(t, f.a, f.b)
	f.b.peerLink(t, f.a.pub)
	f.s = la.current.Load()
	f.sock = udpLoopback(t)
	t.Cleanup(func() { f.sock.Close() })
	in, err := newDatagramReader(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.r = &reader{in: in}
	return f
}

// send seals k transport packets for b and sends them to the fixture's socket from a's socket, so
// that b sees them come from a's address (no roaming).
func (f *readFixture) send(t testing.TB, k int) {
	to := addrOf(f.sock)
	for range k {
		pkt := f.s.seal(f.seal.data[:], &f.seal.nonce, f.s.sendCounter.Add(1)-1, f.msg)
		if _, err := f.a.conn.WriteToUDPAddrPort(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll calls readBatch until k datagrams are read, and returns how many calls that took.
func (f *readFixture) readAll(t testing.TB, k int) (calls int) {
	for got := 0; got < k; calls++ {
		n, err := f.b.readBatch(f.r)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	return calls
}

// The whole receive path, from the system call that reads a batch to delivery, allocates nothing per
// packet: slots, address parsing and decryption all reuse the reader's memory.
func TestReadBatchDoesNotAllocate(t *testing.T) {
	f := newReadFixture(t)
	runs := 0
	allocs := testing.AllocsPerRun(200, func() {
		runs++
		f.send(t, readBatchSize)
		f.readAll(t, readBatchSize)
	})
	if perPacket := allocs / readBatchSize; perPacket != 0 {
		t.Fatalf("reading a batch allocates %v times, %v per packet", allocs, perPacket)
	}
	if want := int64(runs * readBatchSize); f.delivered.Load() != want {
		t.Fatalf("%d of %d packets delivered: the test did not exercise the receive path", f.delivered.Load(), want)
	}
}

// A datagram too long for a read slot is truncated by the kernel; it is counted as malformed, never
// handed to OnOther cut short, and the datagrams around it are unharmed.
func TestOversizedDatagramIsCountedMalformed(t *testing.T) {
	b := newTestNode(t)
	raw := udpLoopback(t)
	defer raw.Close()
	before := b.Stats()
	whole := bytes.Repeat([]byte{0xff}, readSlotSize) // not a link packet: OnOther's
	for _, size := range []int{readSlotSize + 1, 9000, 65507} {
		pkt := bytes.Repeat([]byte{0xff}, size)
		if _, err := raw.WriteToUDPAddrPort(pkt, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.WriteToUDPAddrPort(whole, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() bool { return b.Stats().PacketsIn-before.PacketsIn == 6 })
	s := b.Stats()
	if got := s.DropMalformed - before.DropMalformed; got != 3 {
		t.Fatalf("%d truncated datagrams counted as malformed, want 3: %+v", got, s)
	}
	if got := b.other.Load(); got != 3 {
		t.Fatalf("OnOther saw %d datagrams, want the 3 that fit a slot", got)
	}
}

// A node on an IPv6 socket reads IPv6 sources, and a dual-stack socket reports IPv4 peers by their
// plain IPv4 address.
func TestIPv6AndDualStackSockets(t *testing.T) {
	listen6 := func(t *testing.T, addr string) *net.UDPConn {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		return c
	}
	t.Run("ipv6", func(t *testing.T) {
		on6 := withConfig(func(c *Config) { c.Conn.Close(); c.Conn = listen6(t, "[::1]:0") })
		a, b := newTestNode(t, on6), newTestNode(t, on6)
		exchange(t, a, b)
	})
	t.Run("dual-stack", func(t *testing.T) {
		a := newTestNode(t)
		b := newTestNode(t, withConfig(func(c *Config) { c.Conn.Close(); c.Conn = listen6(t, "[::]:0") }))
		exchange(t, a, b)
	})
}

// exchange dials b from a, sends a message each way and checks that b sees a at a's own address.
func exchange(t *testing.T, a, b *testNode) {
	t.Helper()
	la := dialAt(t, a, netip.AddrPortFrom(a.LocalAddr().Addr(), b.LocalAddr().Port()), b.pub)
	if err := la.Send([]byte("there")); err != nil {
		t.Fatal(err)
	}
	d := b.recv(t)
	if string(d.msg) != "there" || d.link.RemoteAddr() != a.LocalAddr() {
		t.Fatalf("b got %q from %v, want from %v", d.msg, d.link.RemoteAddr(), a.LocalAddr())
	}
	if err := d.link.Send([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if d := a.recv(t); string(d.msg) != "back" {
		t.Fatalf("a got %q", d.msg)
	}
}
