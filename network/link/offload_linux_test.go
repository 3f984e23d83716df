package link

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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
	if !n.gso.Load() {
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
	for i := 0; i < len(sealed); i += coalesceRun(sealed[i:]) {
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
	if a.gso.Load() {
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

func TestGROSegmentSize(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	i32 := func(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }
	for _, c := range []struct {
		name    string
		control []byte
		want    int
	}{
		{"none", nil, 0},
		{"int", cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(1452)), 1452},
		{"uint16", cmsg(unix.SOL_UDP, unix.UDP_GRO, binary.NativeEndian.AppendUint16(nil, 1452)), 1452},
		{"after another", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(700))...), 700},
		{"another only", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), 0},
		{"too short", cmsg(unix.SOL_UDP, unix.UDP_GRO, []byte{1}), 0},
		{"length past the end", cmsg(unix.SOL_UDP, unix.UDP_GRO, i32(1452))[:unix.CmsgLen(2)], 0},
		{"header only", make([]byte, unix.SizeofCmsghdr), 0},
	} {
		if got := groSegmentSize(c.control); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestPutSockaddrRoundTrip(t *testing.T) {
	for _, c := range []struct {
		ap    string
		inet6 bool
		want  string // "" for refused
	}{
		{"192.0.2.7:51820", false, "192.0.2.7:51820"},
		{"[::ffff:192.0.2.7]:9", false, "192.0.2.7:9"},
		{"192.0.2.7:9", true, "[::ffff:192.0.2.7]:9"},
		{"[2001:db8::1]:443", true, "[2001:db8::1]:443"},
		{"[fe80::1%1]:7", true, "[fe80::1%lo]:7"},
		{"[fe80::1%lo]:7", true, "[fe80::1%lo]:7"},
		{"[2001:db8::1]:443", false, ""},
		{"[fe80::1%nosuchinterface0]:7", true, ""},
	} {
		var b [unix.SizeofSockaddrInet6]byte
		n, ok := putSockaddr(&b, netip.MustParseAddrPort(c.ap), c.inet6)
		if c.want == "" {
			if ok {
				t.Errorf("%s (inet6 %v): encoded, want refused", c.ap, c.inet6)
			}
			continue
		}
		var z zoneName
		got, ok2 := parseSockaddr(b[:n], &z)
		if !ok || !ok2 || got.String() != c.want {
			t.Errorf("%s (inet6 %v): round trip gave %v (%v %v), want %s", c.ap, c.inet6, got, ok, ok2, c.want)
		}
	}
}
