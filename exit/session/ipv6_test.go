package session

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/tun"
)

var (
	clientAddr6 = netip.MustParseAddr("fd6d:7670::2") // the client's TUN address
	server6     = netip.MustParseAddr("2001:db8:113::10")
	pool6       = netip.MustParsePrefix("fd00:8::/112")
	self6       = netip.MustParseAddr("fd00:8::1")
)

// udp6 builds an IPv6 UDP packet with a correct checksum, summed here from scratch.
func udp6(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 48+len(payload))
	p[0], p[6], p[7] = 0x60, 17, 64
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
	copy(p[48:], payload)
	c := ^sum(p[40:], pseudo6(p))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[46:], c)
	return p
}

// pseudo6 is the sum of pkt's IPv6 pseudo-header, for a transport right after the fixed header.
func pseudo6(pkt []byte) uint32 {
	acc := uint32(pkt[6]) + uint32(binary.BigEndian.Uint16(pkt[4:]))
	for i := 8; i < 40; i += 2 {
		acc += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	return acc
}

func newEngine6(t *testing.T) (*Engine, *tun.Channel) {
	t.Helper()
	pool, err := nat.NewPool(nat.DefaultPrefix, self)
	if err != nil {
		t.Fatal(err)
	}
	p6, err := nat.NewPool6(pool6, self6)
	if err != nil {
		t.Fatal(err)
	}
	dev := tun.NewChannel(1500)
	e, err := New(Config{TUN: dev, Pool: pool, Self: self, Pool6: p6, Self6: self6, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, dev
}

func fromTUN6(t *testing.T, dev *tun.Channel) ([]byte, nat.Header) {
	t.Helper()
	select {
	case p := <-dev.Outbound:
		h, err := nat.ParseIPv6(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum(p[40:], pseudo6(p)) != 0xffff {
			t.Fatal("UDP checksum wrong after NAT")
		}
		return p, h
	case <-time.After(2 * time.Second):
		t.Fatal("nothing reached the TUN")
		return nil, nat.Header{}
	}
}

// TestIPv6GoesOutWithThePoolAddressAndRepliesComeBack: at an exit with an IPv6 pool a client's IPv6
// packet leaves from the session's IPv6 address, and the reply comes back to the client's.
func TestIPv6GoesOutWithThePoolAddressAndRepliesComeBack(t *testing.T) {
	e, dev := newEngine6(t)
	c := newCircuit(1)
	begin(t, e, c)
	e.Handle(c, cell.MsgData, udp6(clientAddr6, server6, 5000, 53, []byte("query")))
	_, h := fromTUN6(t, dev)
	if h.Src == clientAddr6 || !pool6.Contains(h.Src) || h.Src == self6 || h.Dst != server6 {
		t.Fatalf("to the internet: %v -> %v", h.Src, h.Dst)
	}
	// IPv4 goes on as before, from the same session's IPv4 address.
	e.Handle(c, cell.MsgData, udp4(clientAddr, server4ForV6, 5000, 53, []byte("query")))
	if h4 := fromTUN(t, dev); !nat.DefaultPrefix.Contains(h4.Src) {
		t.Fatalf("IPv4 from %v", h4.Src)
	}
	dev.Inbound <- udp6(server6, h.Src, 53, 5000, []byte("answer"))
	m := c.next(t)
	r, err := nat.ParseIPv6(m.data)
	if err != nil || m.t != cell.MsgData || r.Dst != clientAddr6 || r.Src != server6 || r.DstPort != 5000 {
		t.Fatalf("reply: %v %+v %v", m.t, r, err)
	}
	if sum(m.data[40:], pseudo6(m.data)) != 0xffff {
		t.Fatal("reply's UDP checksum wrong")
	}
	// A second session gets another IPv6 address.
	c2 := newCircuit(2)
	begin(t, e, c2)
	e.Handle(c2, cell.MsgData, udp6(clientAddr6, server6, 5000, 53, nil))
	if _, h2 := fromTUN6(t, dev); h2.Src == h.Src {
		t.Fatal("two sessions share an IPv6 address")
	}
	// Replies to no session's address, and from another source than the session's first, are counted.
	dev.Inbound <- udp6(server6, netip.MustParseAddr("fd00:8::ff:ff"), 1, 2, nil)
	e.Handle(c, cell.MsgData, udp6(netip.MustParseAddr("fd6d:7670::99"), server6, 5000, 53, nil))
	waitFor(t, func() bool { s := e.Stats(); return s.DropUnknownDest == 1 && s.DropForeignSource == 1 })
	if s := e.Stats(); s.DropIPv6 != 0 || s.ToInternet != 3 || s.FromInternet != 1 {
		t.Fatalf("%+v", s)
	}
}

var server4ForV6 = netip.MustParseAddr("198.51.100.7")

// TestIPv6PolicyDeniesWithICMPv6: local and non-global IPv6 destinations are refused with an ICMPv6
// "administratively prohibited" to the client, and nothing reaches the TUN; neither does a routing
// header, which would carry the packet past the destination the policy judged.
func TestIPv6PolicyDeniesWithICMPv6(t *testing.T) {
	e, dev := newEngine6(t)
	c := newCircuit(1)
	begin(t, e, c)
	for _, dst := range []string{"::1", "fe80::1", "fd00::1", "fd00:8::1", "::ffff:8.8.8.8", "2002:7f00:1::1", "100::1"} {
		e.Handle(c, cell.MsgData, udp6(clientAddr6, netip.MustParseAddr(dst), 5000, 80, []byte("x")))
		m := c.next(t)
		h, err := nat.ParseIPv6(m.data)
		if err != nil || h.Proto != 58 || h.ICMPType != 1 || h.ICMPCode != nat.Code6AdminProhibited || h.Dst != clientAddr6 || h.Src != self6 {
			t.Fatalf("%s: answer %+v %v, want ICMPv6 admin-prohibited to the client", dst, h, err)
		}
		if sum(m.data[40:], pseudo6(m.data)) != 0xffff {
			t.Fatalf("%s: ICMPv6 checksum wrong", dst)
		}
	}
	routed := udp6(clientAddr6, server6, 5000, 80, make([]byte, 16))
	routed[6] = 43 // a routing header in front of the UDP bytes
	e.Handle(c, cell.MsgData, routed)
	waitFor(t, func() bool { return e.Stats().DropProtocol == 1 })
	select {
	case p := <-dev.Outbound:
		t.Fatalf("a refused packet reached the TUN: %x", p)
	case <-time.After(50 * time.Millisecond):
	}
	if s := e.Stats(); s.DropPolicy != 7 || s.ToInternet != 0 {
		t.Fatalf("%+v", s)
	}
}

// TestIPv6DroppedWithoutAPool: an exit without an IPv6 pool drops IPv6 both ways and counts it.
func TestIPv6DroppedWithoutAPool(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c := newCircuit(1)
	begin(t, e, c)
	e.Handle(c, cell.MsgData, udp6(clientAddr6, server6, 5000, 53, nil))
	dev.Inbound <- udp6(server6, netip.MustParseAddr("fd00:8::2"), 53, 5000, nil)
	waitFor(t, func() bool { return e.Stats().DropIPv6 == 2 })
	select {
	case p := <-dev.Outbound:
		t.Fatalf("IPv6 reached the TUN: %x", p)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := New(Config{TUN: tun.NewChannel(1500), Pool: e.cfg.Pool, Self: self, Pool6: e.cfg.Pool}); err == nil {
		t.Fatal("an IPv6 pool without the TUN's IPv6 address was accepted")
	}
}
