package link

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// Every drop counter reaches Stats and is listed by DropsByReason once, under a reason of its own: a
// reason added to one place and not the others would be a drop that no metric shows.
func TestEveryDropIsListed(t *testing.T) {
	var c counters
	cv := reflect.ValueOf(&c).Elem()
	for i := range cv.NumField() {
		(*atomic.Uint64)(unsafe.Pointer(cv.Field(i).UnsafeAddr())).Add(uint64(i + 1))
	}
	s := c.snapshot()
	sv := reflect.ValueOf(s)
	listed := map[uint64]string{}
	reasons := map[string]bool{}
	for _, d := range s.DropsByReason() {
		if reasons[d.Reason] {
			t.Errorf("reason %q listed twice", d.Reason)
		}
		reasons[d.Reason] = true
		listed[d.Count] = d.Reason
	}
	var sum uint64
	for i := range sv.NumField() {
		name := sv.Type().Field(i).Name
		if !strings.HasPrefix(name, "Drop") {
			continue
		}
		v := sv.Field(i).Uint()
		sum += v
		if v == 0 {
			t.Errorf("Stats.%s is not filled in by snapshot", name)
		} else if _, ok := listed[v]; !ok {
			t.Errorf("Stats.%s is not listed by DropsByReason", name)
		}
		delete(listed, v)
	}
	for _, reason := range listed {
		t.Errorf("DropsByReason lists %q twice or from no Drop field", reason)
	}
	if s.Drops() != sum {
		t.Errorf("Drops() = %d, the Drop fields sum to %d", s.Drops(), sum)
	}
}

// Each kind of bad datagram sent at a node with a live link moves the one counter of its reason, and
// only that one.
func TestEachBadDatagramMovesItsCounter(t *testing.T) {
	a := newTestNode(t)
	b := newTestNode(t, withOther(func(pkt []byte, _ netip.AddrPort) bool { return string(pkt) == "wanted" }))
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
	if err := l.Send([]byte("real")); err != nil {
		t.Fatal(err)
	}
	b.recv(t)
	real := *captured.Load()
	raw := udpLoopback(t)
	defer raw.Close()

	flipped := flipBit(real, len(real)*8-1)
	unknown := append([]byte(nil), real...)
	binary.BigEndian.PutUint32(unknown[4:8], binary.BigEndian.Uint32(real[4:8])^0x5a5a5a5a)
	reserved := append([]byte(nil), real...)
	reserved[2] = 1
	for _, tc := range []struct {
		reason string
		pkt    []byte
		viaP   bool // sent from the proxy, as if by a, rather than from a stranger's socket
	}{
		{"bad_mac", flipped, true},
		{"replay", real, true},
		{"unknown_index", unknown, false},
		{"malformed", reserved, false},
		{"too_short", real[:minTransportLen-1], false},
		{"too_short", []byte{typeInitiation, 0, 0, 0, 1, 2, 3}, false},
		{"too_short", []byte{typeTransport}, false},
		{"garbage", []byte("not a link packet"), false},
		{"garbage", []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"relay_unknown", append([]byte{typeRelayed, 0, 0, 0, 0, 0, 0, 9}, real...), false},
	} {
		before := b.Stats()
		if tc.viaP {
			p.sendToB(tc.pkt)
		} else if _, err := raw.WriteToUDPAddrPort(tc.pkt, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() bool { return b.Stats().PacketsIn > before.PacketsIn })
		after := b.Stats()
		for i, d := range after.DropsByReason() {
			moved := d.Count - before.DropsByReason()[i].Count
			want := uint64(0)
			if d.Reason == tc.reason {
				want = 1
			}
			if moved != want {
				t.Errorf("%s (%x…): %s moved by %d, want %d", tc.reason, tc.pkt[:min(len(tc.pkt), 8)], d.Reason, moved, want)
			}
		}
	}
	// A datagram the HandleOther handler wants is no drop.
	before := b.Stats()
	raw.WriteToUDPAddrPort([]byte("wanted"), b.LocalAddr())
	eventually(t, 5*time.Second, func() bool { return b.Stats().OtherIn == before.OtherIn+1 })
	if b.Stats().Drops() != before.Drops() {
		t.Fatal("a datagram the HandleOther handler took was counted as a drop")
	}
	select {
	case d := <-b.msgs:
		t.Fatalf("a bad datagram was delivered: %q", d.msg)
	default:
	}
}

// Counting a garbage datagram costs no allocation: a flood of them makes the node do nothing but add
// to a counter.
func TestDroppingGarbageDoesNotAllocate(t *testing.T) {
	b := newTestNode(t, withOther(nil))
	from := netip.MustParseAddrPort("127.0.0.1:9")
	var r reader
	transport := make([]byte, 200)
	transport[0] = typeTransport
	binary.BigEndian.PutUint32(transport[4:8], 0x01020304)
	for _, pkt := range [][]byte{
		[]byte("garbage garbage garbage"),
		{typeTransport, 0, 0},
		{typeTransport, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28},
		transport,
	} {
		before := b.Stats().Drops()
		if allocs := testing.AllocsPerRun(100, func() { b.handlePacket(&r, pkt, from) }); allocs != 0 {
			t.Errorf("dropping %x… allocates %v times", pkt[:4], allocs)
		}
		if b.Stats().Drops() == before {
			t.Errorf("%x… was not counted", pkt[:4])
		}
	}
}

// BenchmarkDrop measures what one spoiled or foreign datagram costs a node's reader, per kind: the
// rate one core turns a flood into counted drops (make bench). A garbage or unknown-index datagram is a
// classification and an atomic add; a bad MAC costs an AEAD open of the whole datagram.
func BenchmarkDrop(b *testing.B) {
	a := newTestNode(b)
	n := newTestNode(b, withOther(nil), withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
	la := dial(b, a, n)
	s := la.current.Load()
	var seal packetBuf
	good := s.seal(seal.data[:], &seal.nonce, s.sendCounter.Add(1)-1, make([]byte, MaxMessage), 0)
	badMAC := flipBit(good, len(good)*8-1)
	unknown := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(unknown[4:8], binary.BigEndian.Uint32(good[4:8])^0x5a5a5a5a)
	garbage := make([]byte, MaxPacket)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	garbage[0] = 0x80
	from := netip.MustParseAddrPort("127.0.0.1:9")
	for _, k := range []struct {
		name string
		pkt  []byte
	}{{"garbage", garbage}, {"unknown_index", unknown}, {"bad_mac", badMAC}} {
		b.Run(k.name, func(b *testing.B) {
			var r reader
			buf := make([]byte, len(k.pkt))
			b.SetBytes(int64(len(k.pkt)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, k.pkt) // a failed open may have written into the buffer
				n.handlePacket(&r, buf, from)
			}
		})
	}
}
