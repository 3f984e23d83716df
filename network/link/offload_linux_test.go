package link

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// numbered returns k messages of the given sizes (cycled), each starting with its index.
func numbered(k int, sizes ...int) [][]byte {
	msgs := make([][]byte, k)
	for i := range msgs {
		msgs[i] = make([]byte, sizes[i%len(sizes)])
		binary.BigEndian.PutUint32(msgs[i], uint32(i))
	}
	return msgs
}

// receiveInOrder takes len(msgs) messages from b and checks they are msgs, in order.
func receiveInOrder(t *testing.T, b *testNode, msgs [][]byte) {
	t.Helper()
	for i, m := range msgs {
		d := b.recv(t)
		if !bytes.Equal(d.msg, m) {
			t.Fatalf("message %d: got %d bytes starting %x, want %d starting %x", i, len(d.msg), d.msg[:min(4, len(d.msg))], len(m), m[:4])
		}
	}
}

// sendAndCount sends msgs from a to b with SendBatch, checks that b gets them all in order, and
// returns how a's write counters and b's read counters rose.
func sendAndCount(t *testing.T, a, b *testNode, msgs [][]byte) (sent, got Stats) {
	t.Helper()
	l := dial(t, a, b)
	b.peerLink(t, a.pub)
	eventually(t, 5*time.Second, func() bool { return a.Stats().PacketsOut == b.Stats().PacketsIn }) // the handshake is done with
	a0, b0 := a.Stats(), b.Stats()
	if n, err := l.SendBatch(msgs); err != nil || n != len(msgs) {
		t.Fatalf("sent %d of %d: %v", n, len(msgs), err)
	}
	receiveInOrder(t, b, msgs)
	a1, b1 := a.Stats(), b.Stats()
	return Stats{
			PacketsOut: a1.PacketsOut - a0.PacketsOut,
			WriteCalls: a1.WriteCalls - a0.WriteCalls,
			WriteMsgs:  a1.WriteMsgs - a0.WriteMsgs,
		}, Stats{
			PacketsIn: b1.PacketsIn - b0.PacketsIn,
			ReadCalls: b1.ReadCalls - b0.ReadCalls,
			ReadMsgs:  b1.ReadMsgs - b0.ReadMsgs,
		}
}

func needOffload(t *testing.T, n *testNode) {
	t.Helper()
	if !n.sock.GSO() {
		t.Skip("the kernel has no UDP GSO")
	}
}

// A batch of equal packets leaves as one datagram the kernel segments, and arrives as one that it
// coalesced: one write of one message, one read of one message, and every packet in order.
func TestSendBatchCoalescesEqualPackets(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	needOffload(t, a)
	const n = 3 * MaxBatch
	msgs := numbered(n, benchSize)
	sent, got := sendAndCount(t, a, b, msgs)
	// SendBatch takes MaxBatch messages per system call, and 32 full packets fit one datagram. A
	// keepalive the link sends meanwhile may add a packet, a call and a datagram.
	extra := func(got, want uint64) bool { return got < want || got > want+1 }
	if extra(sent.PacketsOut, n) || extra(sent.WriteCalls, n/MaxBatch) || extra(sent.WriteMsgs, n/MaxBatch) {
		t.Errorf("%d packets took %d system calls and %d datagrams, want %d and %d", sent.PacketsOut, sent.WriteCalls, sent.WriteMsgs, n/MaxBatch, n/MaxBatch)
	}
	if extra(got.PacketsIn, n) || got.ReadMsgs > n/MaxBatch+1 {
		t.Errorf("%d packets arrived in %d datagrams, want at most %d: not coalesced on receive", got.PacketsIn, got.ReadMsgs, n/MaxBatch)
	}
}

// Packets of mixed sizes keep their order: each run of equal ones (and a shorter one ending it) is
// one datagram, and a longer packet starts the next.
func TestSendBatchMixedSizesKeepOrder(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	needOffload(t, a)
	sizes := []int{benchSize, benchSize, benchSize, 200, 200, 600, 600, 600, 100, 4, 4, benchSize, 4, benchSize, benchSize}
	msgs := numbered(len(sizes), sizes...)
	sealed := make([][]byte, len(msgs))
	for i, m := range msgs {
		sealed[i] = make([]byte, len(m)+transportHeaderLen+tagLen)
	}
	var want uint64
	for i := 0; i < len(sealed); i += udp.CoalesceRun(sealed[i:]) {
		want++
	}
	sent, got := sendAndCount(t, a, b, msgs)
	if sent.WriteMsgs != want || sent.WriteCalls != 1 {
		t.Errorf("%d packets went as %d datagrams in %d calls, want %d in 1", sent.PacketsOut, sent.WriteMsgs, sent.WriteCalls, want)
	}
	if got.PacketsIn != uint64(len(msgs)) {
		t.Errorf("%d packets arrived, want %d", got.PacketsIn, len(msgs))
	}
}

// With GSO off, SendBatch writes one datagram per packet, as before it existed, and the peer
// without GRO reads them one by one; everything still arrives in order.
func TestSendBatchWithoutOffload(t *testing.T) {
	a, b := newTestNode(t, withOffload(false, false)), newTestNode(t, withOffload(false, false))
	const n = 2 * MaxBatch
	msgs := numbered(n, benchSize)
	sent, got := sendAndCount(t, a, b, msgs)
	if sent.WriteMsgs != n || sent.WriteCalls != n/MaxBatch {
		t.Errorf("%d packets went as %d datagrams in %d calls, want %d in %d", sent.PacketsOut, sent.WriteMsgs, sent.WriteCalls, n, n/MaxBatch)
	}
	if got.ReadMsgs != n {
		t.Errorf("%d packets arrived in %d reads, want one each", got.PacketsIn, got.ReadMsgs)
	}
}

// A receiver without GRO gets a sender's coalesced datagrams cut back into packets by the kernel.
func TestSendBatchToPeerWithoutGRO(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t, withOffload(true, false))
	needOffload(t, a)
	const n = MaxBatch
	msgs := numbered(n, benchSize)
	sent, got := sendAndCount(t, a, b, msgs)
	if sent.WriteMsgs != 1 || got.ReadMsgs != n {
		t.Errorf("%d packets went as %d datagrams and arrived as %d, want 1 and %d", n, sent.WriteMsgs, got.ReadMsgs, n)
	}
}

// When the kernel refuses a segmented datagram, the node gives GSO up for good and sends the same
// packets one per datagram, losing none and keeping their order. SO_NO_CHECK (no UDP checksum)
// makes Linux refuse UDP_SEGMENT with EINVAL while plain sends still work.
func TestSendBatchFallsBackWhenKernelRefusesGSO(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	needOffload(t, a)
	rc, err := a.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
	if serr != nil {
		t.Skipf("SO_NO_CHECK: %v", serr)
	}
	const n = 2 * MaxBatch
	msgs := numbered(n, benchSize)
	sent, _ := sendAndCount(t, a, b, msgs)
	if a.sock.GSO() {
		t.Fatal("GSO still on after the kernel refused it")
	}
	if sent.WriteMsgs != n {
		t.Errorf("%d packets went as %d datagrams, want one each after the fallback", n, sent.WriteMsgs)
	}
	if _, err := dial(t, a, b).SendBatch(numbered(3, benchSize)); err != nil {
		t.Fatalf("send after the fallback: %v", err)
	}
}

// A coalesced datagram is split into its packets, in order, with a shorter last one; a corrupted
// packet inside it is one counted drop, and its neighbours are delivered.
func TestGROSplitsCoalescedDatagram(t *testing.T) {
	f := newReadFixture(t, true)
	needOffload(t, f.a)
	f.record = true
	const k = 10
	var pkts [][]byte
	for i := range k {
		size := benchSize
		if i == k-1 {
			size = 300
		}
		pkts = append(pkts, f.sealNext(i, size))
	}
	pkts[4][40] ^= 1 // packet 4 fails authentication
	a0, b0 := f.a.Stats(), f.b.Stats()
	f.write(t, pkts)
	// One datagram, and perhaps one more: node a's link to node b may send its keepalive meanwhile.
	if got := f.a.Stats().WriteMsgs - a0.WriteMsgs; got < 1 || got > 2 {
		t.Fatalf("%d packets went as %d datagrams, want 1", k, got)
	}
	time.Sleep(20 * time.Millisecond)
	reads, err := f.b.readBatch(f.r)
	if err != nil {
		t.Fatal(err)
	}
	s := f.b.Stats()
	if reads != 1 || s.PacketsIn-b0.PacketsIn != k {
		t.Fatalf("one read of %d datagrams, %d packets; want 1 and %d", reads, s.PacketsIn-b0.PacketsIn, k)
	}
	if s.DropBadMAC-b0.DropBadMAC != 1 || s.Drops()-b0.Drops() != 1 {
		t.Errorf("drops %+v, want the one bad MAC", s)
	}
	want := []uint64{0, 1, 2, 3, 5, 6, 7, 8, 9}
	if !slices.Equal(f.got, want) {
		t.Errorf("delivered %v, want %v", f.got, want)
	}
}

// A reader without GRO still gets every packet of a coalesced send, cut apart by the kernel.
func TestReadWithoutGROGetsSegmentedDatagrams(t *testing.T) {
	f := newReadFixture(t, false)
	needOffload(t, f.a)
	f.record = true
	a0 := f.a.Stats()
	f.send(t, MaxBatch)
	// One datagram, and perhaps one more: node a's link to node b may send its keepalive meanwhile.
	if got := f.a.Stats().WriteMsgs - a0.WriteMsgs; got < 1 || got > 2 {
		t.Fatalf("%d packets went as %d datagrams, want 1", MaxBatch, got)
	}
	if calls := f.readAll(t, MaxBatch); calls < 1 {
		t.Fatal("no read")
	}
	if len(f.got) != MaxBatch || !slices.IsSorted(f.got) {
		t.Fatalf("delivered %v", f.got)
	}
}
