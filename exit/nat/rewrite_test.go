package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

var (
	client = a4("10.0.0.2")  // every client's inner address
	pooled = a4("10.8.3.17") // the session's pool address
	server = a4("93.184.216.34")
)

// roundTrip rewrites pkt the way the exit does in both directions: the client's packet gets the pool
// source, its mirror (the reply) gets the client back as destination, and mirroring again must give
// the original bytes.
func roundTrip(t *testing.T, pkt []byte, pool [4]byte) {
	t.Helper()
	orig := bytes.Clone(pkt)
	old, err := RewriteSource(pkt, netip.AddrFrom4(pool))
	if err != nil {
		t.Fatalf("RewriteSource: %v", err)
	}
	if old.As4() != [4]byte(orig[12:16]) || [4]byte(pkt[12:16]) != pool {
		t.Fatalf("RewriteSource returned %v, wrote %v", old, pkt[12:16])
	}
	verify(t, pkt)
	if quoted, ok := quotedPacket(orig); ok && [4]byte(quoted[16:20]) == [4]byte(orig[12:16]) {
		if q, _ := quotedPacket(pkt); [4]byte(q[16:20]) != pool {
			t.Fatalf("quoted destination %v not rewritten to %v", q[16:20], pool)
		}
	}
	mirror(pkt)
	verify(t, pkt)
	back, err := RewriteDest(pkt, old)
	if err != nil {
		t.Fatalf("RewriteDest: %v", err)
	}
	if back.As4() != pool {
		t.Fatalf("RewriteDest returned %v, want the pool address", back)
	}
	verify(t, pkt)
	mirror(pkt)
	if !bytes.Equal(pkt, orig) {
		t.Fatalf("round trip changed the packet:\n got %x\nwant %x", pkt, orig)
	}
}

func TestRewriteTCP(t *testing.T) {
	pkt := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(40000, 443, []byte("hello, world")), pad: 7})
	orig := bytes.Clone(pkt)
	if _, err := RewriteSource(pkt, netip.AddrFrom4(pooled)); err != nil {
		t.Fatal(err)
	}
	verify(t, pkt)
	// Only the source, the IP checksum and the TCP checksum change; the padding is not the packet's.
	for i := range pkt {
		changed := pkt[i] != orig[i]
		allowed := i >= 12 && i < 16 || i == 10 || i == 11 || i == 36 || i == 37
		if changed && !allowed {
			t.Fatalf("byte %d changed", i)
		}
	}
	copy(pkt, orig)
	roundTrip(t, pkt, pooled)
}

func TestRewriteUDP(t *testing.T) {
	for _, noSum := range []bool{false, true} {
		pkt := ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(5353, 53, []byte("query")), noUDPSum: noSum})
		if _, err := RewriteSource(pkt, netip.AddrFrom4(pooled)); err != nil {
			t.Fatal(err)
		}
		verify(t, pkt)
		if c := binary.BigEndian.Uint16(pkt[26:]); noSum && c != 0 {
			t.Fatalf("UDP without checksum got checksum %#04x", c)
		}
		pkt = ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(5353, 53, []byte("query")), noUDPSum: noSum})
		roundTrip(t, pkt, pooled)
	}
}

// A UDP checksum that works out to zero must be sent as 0xFFFF, or it would read as "no checksum".
// The last 16 bits of the pool address take every value, so some of them make the sum zero.
func TestRewriteUDPZeroChecksum(t *testing.T) {
	orig := ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, []byte{1, 2, 3, 4})})
	pkt := bytes.Clone(orig)
	found := 0
	for lo := range 1 << 16 {
		pool := [4]byte{10, 8, byte(lo >> 8), byte(lo)}
		copy(pkt, orig)
		if _, err := RewriteSource(pkt, netip.AddrFrom4(pool)); err != nil {
			t.Fatal(err)
		}
		switch binary.BigEndian.Uint16(pkt[26:]) {
		case 0:
			t.Fatalf("pool %v: UDP checksum written as 0", pool)
		case 0xffff:
			found++
			verify(t, pkt)
			roundTrip(t, bytes.Clone(orig), pool)
		}
	}
	if found == 0 {
		t.Fatal("no pool address gave a zero UDP checksum")
	}
}

func TestRewriteICMPEcho(t *testing.T) {
	pkt := ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpEcho(7, 1, []byte("ping"))})
	orig := bytes.Clone(pkt)
	if _, err := RewriteSource(pkt, netip.AddrFrom4(pooled)); err != nil {
		t.Fatal(err)
	}
	verify(t, pkt)
	if !bytes.Equal(pkt[20:], orig[20:]) {
		t.Fatal("ICMP echo has no pseudo-header: its message must not change")
	}
	roundTrip(t, orig, pooled)
}

// An ICMP error about a client's packet comes back addressed to the pool address and quoting a
// packet from it; the client must see its own address in both, or its kernel cannot match the error
// to a connection (and path MTU discovery fails).
func TestRewriteICMPErrorQuote(t *testing.T) {
	for _, quoted := range [][]byte{
		ipv4(pktSpec{src: pooled, dst: server, proto: protoUDP, l4: udpDgram(5353, 53, []byte("q"))}),
		ipv4(pktSpec{src: pooled, dst: server, proto: protoTCP, l4: tcpSeg(40000, 443, nil)}),
		ipv4(pktSpec{src: pooled, dst: server, proto: protoTCP, l4: tcpSeg(40000, 443, nil)})[:28], // header + 8
		ipv4(pktSpec{src: pooled, dst: server, proto: protoICMP, l4: icmpEcho(1, 1, nil)}),
	} {
		router := a4("192.0.2.1")
		pkt := ipv4(pktSpec{src: router, dst: pooled, proto: protoICMP, l4: icmpError(3, 4, quoted)})
		orig := bytes.Clone(pkt)
		if _, err := RewriteDest(pkt, netip.AddrFrom4(client)); err != nil {
			t.Fatal(err)
		}
		verify(t, pkt)
		if in := pkt[28:]; [4]byte(in[12:16]) != client || [4]byte(in[16:20]) != server {
			t.Fatalf("quoted addresses %v -> %v", in[12:16], in[16:20])
		}
		// The error, mirrored, is what a client would send about an inbound packet.
		mirror(pkt)
		if _, err := RewriteSource(pkt, netip.AddrFrom4(pooled)); err != nil {
			t.Fatal(err)
		}
		verify(t, pkt)
		mirror(pkt)
		if !bytes.Equal(pkt, orig) {
			t.Fatalf("round trip changed the ICMP error:\n got %x\nwant %x", pkt, orig)
		}
	}
	// A quote about some other host is left alone.
	quoted := ipv4(pktSpec{src: a4("10.8.9.9"), dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)})
	pkt := ipv4(pktSpec{src: server, dst: pooled, proto: protoICMP, l4: icmpError(3, 3, quoted)})
	if _, err := RewriteDest(pkt, netip.AddrFrom4(client)); err != nil {
		t.Fatal(err)
	}
	verify(t, pkt)
	if !bytes.Equal(pkt[28:], quoted) {
		t.Fatal("a quote not about the old address was rewritten")
	}
}

// A TCP datagram split in two fragments: the first fragment's TCP checksum is patched for the
// whole datagram, the second only gets its IP header rewritten, and the reassembled segment
// verifies.
func TestRewriteFragments(t *testing.T) {
	for _, proto := range []uint8{protoTCP, protoUDP} {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 8)
		var l4 []byte
		if proto == protoTCP {
			l4 = tcpSeg(40000, 80, payload)
		} else {
			l4 = udpDgram(40000, 53, payload)
		}
		whole := ipv4(pktSpec{src: client, dst: server, proto: proto, l4: l4})
		const cut = 48 // bytes of transport data in the first fragment, a multiple of 8
		frag := func(from, to int, more bool) []byte {
			// Built as an unknown protocol so that ipv4() leaves the transport bytes as cut.
			f := ipv4(pktSpec{src: client, dst: server, proto: 253, l4: whole[20+from : 20+to]})
			f[9] = proto
			v := uint16(from / 8)
			if more {
				v |= 0x2000
			}
			binary.BigEndian.PutUint16(f[6:], v)
			fillChecksum(f[:20], 10, 0)
			return f
		}
		first, second := frag(0, cut, true), frag(cut, len(whole)-20, false)
		second2 := bytes.Clone(second)
		for _, f := range [][]byte{first, second} {
			if _, err := RewriteSource(f, netip.AddrFrom4(pooled)); err != nil {
				t.Fatal(err)
			}
			verify(t, f)
		}
		if !bytes.Equal(second[20:], second2[20:]) {
			t.Fatal("a non-first fragment's payload changed")
		}
		seg := append(bytes.Clone(first[20:]), second[20:]...)
		verifyL4(t, "reassembled ", proto, pooled, server, seg)
		h, err := ParseIPv4(second)
		if err != nil || !h.Fragment || h.FragOffset != cut || h.SrcPort != 0 {
			t.Fatalf("second fragment parses as %+v, %v", h, err)
		}
		if h, err := ParseIPv4(first); err != nil || !h.Fragment || h.FragOffset != 0 || h.DstPort == 0 {
			t.Fatalf("first fragment parses as %+v, %v", h, err)
		}
	}
}

func TestRewriteErrorsLeavePacketAlone(t *testing.T) {
	good := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)})
	cases := map[string][]byte{
		"empty":         {},
		"IPv6":          append([]byte{0x60}, good[1:]...),
		"short":         good[:19],
		"IHL 4":         append([]byte{0x44}, good[1:]...),
		"cut":           good[:len(good)-1],
		"TCP too short": ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: make([]byte, 19)}),
	}
	for name, pkt := range cases {
		before := bytes.Clone(pkt)
		if _, err := RewriteSource(pkt, netip.AddrFrom4(pooled)); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := RewriteDest(pkt, netip.AddrFrom4(pooled)); err == nil {
			t.Errorf("%s: no error", name)
		}
		if !bytes.Equal(pkt, before) {
			t.Errorf("%s: packet changed on error", name)
		}
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:10.8.0.1")} {
		pkt := bytes.Clone(good)
		if _, err := RewriteSource(pkt, bad); !errors.Is(err, ErrAddrNotIPv4) {
			t.Errorf("RewriteSource to %v: %v", bad, err)
		}
		if !bytes.Equal(pkt, good) {
			t.Errorf("packet changed on error")
		}
	}
}

// Random packets of every kind the exit rewrites, with random addresses, IP options, payload
// lengths and trailing bytes: every checksum verifies after each rewrite and the round trip
// restores the bytes.
func TestRewriteRandomPackets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2024))
	for i := range 3000 {
		src, dst, pool := randAddr(rng), randAddr(rng), randAddr(rng)
		payload := randBytes(rng, rng.IntN(300))
		spec := pktSpec{src: src, dst: dst, options: 4 * rng.IntN(11), pad: rng.IntN(4)}
		switch k := rng.IntN(5); k {
		case 0:
			spec.proto, spec.l4 = protoTCP, tcpSeg(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
		case 1:
			spec.proto, spec.l4 = protoUDP, udpDgram(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
			spec.noUDPSum = rng.IntN(4) == 0
		case 2:
			spec.proto, spec.l4 = protoICMP, icmpEcho(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
		case 3, 4:
			// An ICMP error the client sends about a packet sent to it, quoted whole or cut.
			inner := pktSpec{src: randAddr(rng), dst: src, proto: protoUDP, options: 4 * rng.IntN(3)}
			inner.l4 = udpDgram(uint16(rng.Uint32()), uint16(rng.Uint32()), payload[:min(len(payload), 40)])
			if k == 4 {
				inner.proto, inner.l4 = protoTCP, tcpSeg(uint16(rng.Uint32()), uint16(rng.Uint32()), payload[:min(len(payload), 40)])
			}
			q := ipv4(inner)
			if rng.IntN(2) == 0 {
				q = q[:len(q)-rng.IntN(len(q)-19)]
			}
			spec.proto, spec.l4 = protoICMP, icmpError([]uint8{3, 11, 12}[rng.IntN(3)], uint8(rng.IntN(16)), q)
		}
		pkt := ipv4(spec)
		verify(t, pkt)
		roundTrip(t, pkt, pool)
		if _, err := RewriteDest(pkt, netip.AddrFrom4(pool)); err != nil {
			t.Fatal(err)
		}
		verify(t, pkt)
		if t.Failed() {
			t.Fatalf("packet %d", i)
		}
	}
}

func TestRewriteDoesNotAllocate(t *testing.T) {
	pkts := [][]byte{
		ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, make([]byte, 1200))}),
		ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, make([]byte, 1200))}),
		ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpError(3, 3,
			ipv4(pktSpec{src: server, dst: client, proto: protoUDP, l4: udpDgram(1, 2, nil)}))}),
	}
	p := netip.AddrFrom4(pooled)
	allocs := testing.AllocsPerRun(100, func() {
		for _, pkt := range pkts {
			old, _ := RewriteSource(pkt, p)
			mirror(pkt)
			RewriteDest(pkt, old)
			mirror(pkt)
			ParseIPv4(pkt)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkRewriteSourceTCP(b *testing.B) {
	pkt := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, make([]byte, 1360))})
	x, y := netip.AddrFrom4(pooled), netip.AddrFrom4(client)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		RewriteSource(pkt, x)
		RewriteSource(pkt, y)
	}
}
