package link

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// readFixture is a reader the test drives itself, on a socket of its own, handing datagrams to node b:
// the test calls b.readBatch instead of leaving it to b's reading goroutine. Packets are sealed under
// a's session to b and written from a's socket, with a's batch writer (UDP GSO where a has it), so
// that b sees them come from a's address (no roaming).
type readFixture struct {
	a, b *testNode
	s    *session // a's session to b: packets sealed under it are b's to open
	sock *net.UDPConn
	r    *reader

	delivered atomic.Int64
	record    bool     // keep each delivered message's sequence number in got
	got       []uint64 // guarded by mu
	mu        sync.Mutex

	seq  uint64 // the next sequence number send puts in a message's first 8 bytes
	seal [MaxBatch]packetBuf
	pkts [MaxBatch][]byte
	w    udp.Writer
	to   *udp.Target
	msg  []byte
}

// newReadFixture makes the fixture; gro turns UDP GRO on for its socket, and opts apply to a.
func newReadFixture(t *testing.T, gro bool, opts ...nodeOption) *readFixture {
	f := &readFixture{msg: make([]byte, benchSize)}
	f.a = newTestNode(t, opts...)
	f.b = newTestNode(t, withConfig(func(c *Config) {
		c.OnMessage = func(_ *Link, msg []byte) {
			f.delivered.Add(1)
			if f.record {
				f.mu.Lock()
				f.got = append(f.got, binary.BigEndian.Uint64(msg))
				f.mu.Unlock()
			}
		}
	}))
	la := dial(t, f.a, f.b)
	f.b.peerLink(t, f.a.pub)
	f.s = la.current.Load()
	f.sock = udpLoopback(t)
	t.Cleanup(func() { f.sock.Close() })
	f.sock.SetReadDeadline(time.Now().Add(time.Minute)) // a read that waits for a lost datagram fails the test, not hangs it
	sock, err := udp.Open(f.sock, -1, udp.Offload{GRO: gro}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gro && !sock.GRO() {
		t.Skip("the kernel has no UDP GRO")
	}
	in, err := sock.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	f.r = &reader{in: in}
	f.w.Init()
	if f.to, err = f.a.sock.Target(addrOf(f.sock)); err != nil {
		t.Fatal(err)
	}
	return f
}

// seal seals a message of size bytes for b carrying the next sequence number.
func (f *readFixture) sealNext(i, size int) []byte {
	binary.BigEndian.PutUint64(f.msg, f.seq)
	f.seq++
	p := &f.seal[i]
	return f.s.seal(p.data[:], &p.nonce, f.s.sendCounter.Add(1)-1, f.msg[:size], 0)
}

// send seals k full-cell packets for b and writes them to the fixture's socket, a batch at a time.
func (f *readFixture) send(t testing.TB, k int) {
	for k > 0 {
		m := min(k, MaxBatch)
		for i := range m {
			f.pkts[i] = f.sealNext(i, benchSize)
		}
		f.write(t, f.pkts[:m])
		k -= m
	}
}

// write writes pkts to the fixture's socket as a's SendBatch would, counting the writes in a's stats.
func (f *readFixture) write(t testing.TB, pkts [][]byte) {
	wr, err := f.a.sock.WriteBatch(&f.w, pkts, f.to)
	f.a.stats.writeCalls.Add(uint64(wr.Calls))
	f.a.stats.writeMsgs.Add(uint64(wr.Datagrams))
	if err != nil || wr.Packets != len(pkts) {
		t.Fatalf("wrote %d of %d: %v", wr.Packets, len(pkts), err)
	}
}

// readAll calls readBatch until k datagrams are read, and returns how many calls that took.
func (f *readFixture) readAll(t testing.TB, k int) (calls int) {
	want := f.b.stats.packetsIn.Load() + uint64(k)
	for ; f.b.stats.packetsIn.Load() < want; calls++ {
		if _, err := f.b.readBatch(f.r); err != nil {
			t.Fatal(err)
		}
	}
	return calls
}

// The whole receive path, from the system call that reads a batch to delivery, allocates nothing per
// packet: slots, address parsing, splitting coalesced datagrams and decryption all reuse the
// reader's memory.
func TestReadBatchDoesNotAllocate(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			f := newReadFixture(t, gro, withOffload(gro, false))
			runs := 0
			allocs := testing.AllocsPerRun(200, func() {
				runs++
				f.send(t, MaxBatch)
				f.readAll(t, MaxBatch)
			})
			if perPacket := allocs / MaxBatch; perPacket != 0 {
				t.Fatalf("reading a batch allocates %v times, %v per packet", allocs, perPacket)
			}
			if want := int64(runs * MaxBatch); f.delivered.Load() != want {
				t.Fatalf("%d of %d packets delivered: the test did not exercise the receive path", f.delivered.Load(), want)
			}
		})
	}
}

// A datagram too long for a read slot is truncated by the kernel; it is counted as malformed, never
// handed to the HandleOther handler cut short, and the datagrams around it are unharmed.
func TestOversizedDatagramIsCountedMalformed(t *testing.T) {
	b := newTestNode(t)
	raw := udpLoopback(t)
	defer raw.Close()
	before := b.Stats()
	whole := bytes.Repeat([]byte{0xff}, udp.SlotSize) // not a link packet: the HandleOther handler's
	for _, size := range []int{udp.SlotSize + 1, 9000, 65507} {
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
		t.Fatalf("the HandleOther handler saw %d datagrams, want the 3 that fit a slot", got)
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
