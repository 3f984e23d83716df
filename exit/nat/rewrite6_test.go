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
	client6 = a6("fd6d:7670::2")         // every client's inner IPv6 address
	pooled6 = a6("fd00:8::3:17")         // the session's IPv6 pool address
	server6 = a6("2606:2800:220:1::248") // somewhere on the internet
)

// roundTrip6 is roundTrip for IPv6.
func roundTrip6(t *testing.T, pkt []byte, pool [16]byte) {
	t.Helper()
	orig := bytes.Clone(pkt)
	old, err := RewriteSource6(pkt, netip.AddrFrom16(pool))
	if err != nil {
		t.Fatalf("RewriteSource6: %v", err)
	}
	if old.As16() != [16]byte(orig[8:24]) || [16]byte(pkt[8:24]) != pool {
		t.Fatalf("RewriteSource6 returned %v, wrote %x", old, pkt[8:24])
	}
	verify6(t, pkt)
	if q, ok := quotedPacket6(orig); ok && [16]byte(q[24:40]) == [16]byte(orig[8:24]) {
		if q, _ := quotedPacket6(pkt); [16]byte(q[24:40]) != pool {
			t.Fatalf("quoted destination %x not rewritten to the pool address", q[24:40])
		}
	}
	mirror6(pkt)
	verify6(t, pkt)
	back, err := RewriteDest6(pkt, old)
	if err != nil {
		t.Fatalf("RewriteDest6: %v", err)
	}
	if back.As16() != pool {
		t.Fatalf("RewriteDest6 returned %v, want the pool address", back)
	}
	verify6(t, pkt)
	mirror6(pkt)
	if !bytes.Equal(pkt, orig) {
		t.Fatalf("round trip changed the packet:\n got %x\nwant %x", pkt, orig)
	}
}

func TestParseIPv6(t *testing.T) {
	tcp := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, []byte("x")), pad: 5})
	h, err := ParseIPv6(tcp)
	if err != nil {
		t.Fatal(err)
	}
	if h.Src != netip.AddrFrom16(client6) || h.Dst != netip.AddrFrom16(server6) || h.Proto != protoTCP ||
		h.HeaderLen != 40 || h.TotalLen != 61 || h.SrcPort != 40000 || h.DstPort != 443 || h.Fragment {
		t.Fatalf("TCP: %+v", h)
	}
	withExts := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 53, nil),
		exts: []ext6{{typ: protoHopByHop}, {typ: protoDestOpts, optLen: 2}, {typ: protoFragment}}})
	if h, err := ParseIPv6(withExts); err != nil || h.Proto != protoUDP || h.HeaderLen != 40+8+24+8 || h.DstPort != 53 || h.Fragment {
		t.Fatalf("UDP behind three extension headers (an atomic fragment last): %+v, %v", h, err)
	}
	echo := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmp6Echo(1, 2, nil)})
	if h, err := ParseIPv6(echo); err != nil || h.ICMPType != 128 || h.SrcPort != 0 {
		t.Fatalf("echo: %+v, %v", h, err)
	}
	later := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: []byte{1, 2, 3}, noSum: true,
		exts: []ext6{{typ: protoFragment, offset: 1224, more: true}}})
	if h, err := ParseIPv6(later); err != nil || !h.Fragment || h.FragOffset != 1224 || h.Proto != protoTCP || h.DstPort != 0 {
		t.Fatalf("later fragment: %+v, %v", h, err)
	}
	routed := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoRouting, l4: make([]byte, 24)})
	if h, err := ParseIPv6(routed); err != nil || h.Proto != protoRouting {
		t.Fatalf("a routing header reads as its own protocol: %+v, %v", h, err)
	}
	if h, err := Parse(tcp); err != nil || h.Dst != netip.AddrFrom16(server6) {
		t.Fatalf("Parse of IPv6: %+v, %v", h, err)
	}
	if h, err := Parse(ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)})); err != nil || h.Dst != netip.AddrFrom4(server) {
		t.Fatalf("Parse of IPv4: %+v, %v", h, err)
	}
}

func TestParseIPv6Rejects(t *testing.T) {
	good := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, nil)})
	with := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	many := make([]ext6, maxExtHeaders+1)
	for i := range many {
		many[i] = ext6{typ: protoDestOpts}
	}
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrNotIPv6},
		{"version 4", ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)}), ErrNotIPv6},
		{"39 bytes", good[:39], ErrMalformed},
		{"cut", good[:len(good)-1], ErrMalformed},
		{"jumbogram", with(func(p []byte) []byte { p[4], p[5], p[6] = 0, 0, 0; return p }), ErrMalformed},
		{"TCP too short", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: make([]byte, 19), noSum: true}), ErrMalformed},
		{"UDP too short", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: make([]byte, 7), noSum: true}), ErrMalformed},
		{"ICMPv6 too short", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: make([]byte, 7), noSum: true}), ErrMalformed},
		{"options past the end", with(func(p []byte) []byte {
			p = ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, nil), exts: []ext6{{typ: protoDestOpts}}})
			p[41] = 9
			return p
		}), ErrMalformed},
		{"hop-by-hop not first", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil),
			exts: []ext6{{typ: protoDestOpts}, {typ: protoHopByHop}}}), ErrMalformed},
		{"two fragment headers", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil),
			exts: []ext6{{typ: protoFragment, more: true}, {typ: protoFragment, more: true}}}), ErrMalformed},
		{"first fragment without its TCP header (RFC 7112)", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP,
			l4: make([]byte, 8), noSum: true, exts: []ext6{{typ: protoFragment, more: true}}}), ErrMalformed},
		{"too many extension headers", ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil), exts: many}), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := ParseIPv6(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestRewrite6TCP(t *testing.T) {
	pkt := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, []byte("hello, world")), pad: 7})
	orig := bytes.Clone(pkt)
	if _, err := RewriteSource6(pkt, netip.AddrFrom16(pooled6)); err != nil {
		t.Fatal(err)
	}
	verify6(t, pkt)
	// Only the source and the TCP checksum change; IPv6 has no header checksum, and the padding is
	// not the packet's.
	for i := range pkt {
		if pkt[i] != orig[i] && !(i >= 8 && i < 24 || i == 56 || i == 57) {
			t.Fatalf("byte %d changed", i)
		}
	}
	roundTrip6(t, orig, pooled6)
}

func TestRewrite6UDPAndEcho(t *testing.T) {
	for _, pkt := range [][]byte{
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(5353, 53, []byte("query"))}),
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(5353, 53, []byte("query")), noUDPSum: true}),
		// ICMPv6, unlike ICMP, sums a pseudo-header: an echo's checksum changes with the source.
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmp6Echo(7, 1, []byte("ping"))}),
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 80, []byte("GET")),
			exts: []ext6{{typ: protoHopByHop, optLen: 1}, {typ: protoDestOpts}}}),
	} {
		roundTrip6(t, pkt, pooled6)
	}
	noSum := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil), noUDPSum: true})
	if _, err := RewriteSource6(noSum, netip.AddrFrom16(pooled6)); err != nil || binary.BigEndian.Uint16(noSum[46:]) != 0 {
		t.Fatalf("a UDP checksum of 0 must stay 0: %v", err)
	}
}

// TestRewrite6ICMPErrorQuote: an ICMPv6 error about a client's packet (a Packet Too Big, which IPv6
// path MTU discovery lives on) comes back to the pool address quoting a packet from it; the client
// must see its own address in both, with every checksum right.
func TestRewrite6ICMPErrorQuote(t *testing.T) {
	router := a6("2001:db8:ffff::1")
	for _, quoted := range [][]byte{
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoUDP, l4: udpDgram(5353, 53, []byte("q"))}),
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, bytes.Repeat([]byte{7}, 100))}),
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, nil)})[:40+18], // cut after the TCP checksum
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, nil)})[:40+8],  // cut before it
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoICMPv6, l4: icmp6Echo(1, 1, nil)}),
		ipv6(pkt6Spec{src: pooled6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil), exts: []ext6{{typ: protoDestOpts}}}),
	} {
		for _, typ := range []uint8{1, 2, 3, 4} {
			l4 := icmpError(typ, 0, quoted)
			binary.BigEndian.PutUint32(l4[4:], 1280) // the MTU of a Packet Too Big
			pkt := ipv6(pkt6Spec{src: router, dst: pooled6, proto: protoICMPv6, l4: l4})
			orig := bytes.Clone(pkt)
			if _, err := RewriteDest6(pkt, netip.AddrFrom16(client6)); err != nil {
				t.Fatal(err)
			}
			verify6(t, pkt)
			if in := pkt[48:]; [16]byte(in[8:24]) != client6 || [16]byte(in[24:40]) != server6 {
				t.Fatalf("quoted addresses %x -> %x", in[8:24], in[24:40])
			}
			if len(quoted) == 58 { // the quote holds the TCP checksum: it must be the client's packet's
				want := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 443, nil)})
				if !bytes.Equal(pkt[48:], want[:58]) {
					t.Fatalf("cut quote\n got %x\nwant %x", pkt[48:], want[:58])
				}
			}
			mirror6(pkt)
			if _, err := RewriteSource6(pkt, netip.AddrFrom16(pooled6)); err != nil {
				t.Fatal(err)
			}
			verify6(t, pkt)
			mirror6(pkt)
			if !bytes.Equal(pkt, orig) {
				t.Fatalf("round trip changed the ICMPv6 error:\n got %x\nwant %x", pkt, orig)
			}
		}
	}
	// A quote about some other host is left alone.
	quoted := ipv6(pkt6Spec{src: a6("fd00:8::9:9"), dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)})
	pkt := ipv6(pkt6Spec{src: server6, dst: pooled6, proto: protoICMPv6, l4: icmpError(1, 4, quoted)})
	if _, err := RewriteDest6(pkt, netip.AddrFrom16(client6)); err != nil {
		t.Fatal(err)
	}
	verify6(t, pkt)
	if !bytes.Equal(pkt[48:], quoted) {
		t.Fatal("a quote not about the old address was rewritten")
	}
}

// TestRewrite6Fragments: the first fragment's checksum is patched for the whole datagram, a later
// one only changes its address, and the reassembled datagram verifies.
func TestRewrite6Fragments(t *testing.T) {
	for _, proto := range []uint8{protoTCP, protoUDP, protoICMPv6} {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 8)
		var l4 []byte
		switch proto {
		case protoTCP:
			l4 = tcpSeg(40000, 80, payload)
		case protoUDP:
			l4 = udpDgram(40000, 53, payload)
		default:
			l4 = icmp6Echo(1, 2, payload)
		}
		whole := ipv6(pkt6Spec{src: client6, dst: server6, proto: proto, l4: l4})
		seg := whole[40:]
		const cut = 48
		first := ipv6(pkt6Spec{src: client6, dst: server6, proto: proto, l4: seg[:cut], noSum: true, exts: []ext6{{typ: protoFragment, more: true}}})
		second := ipv6(pkt6Spec{src: client6, dst: server6, proto: proto, l4: seg[cut:], noSum: true, exts: []ext6{{typ: protoFragment, offset: cut}}})
		secondPayload := bytes.Clone(second[48:])
		for _, f := range [][]byte{first, second} {
			if _, err := RewriteSource6(f, netip.AddrFrom16(pooled6)); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(second[48:], secondPayload) {
			t.Fatal("a later fragment's payload changed")
		}
		if [16]byte(second[8:24]) != pooled6 {
			t.Fatal("a later fragment's source was not rewritten")
		}
		reassembled := ipv6(pkt6Spec{src: pooled6, dst: server6, proto: proto, noSum: true, l4: append(bytes.Clone(first[48:]), second[48:]...)})
		verify6(t, reassembled)
	}
}

func TestRewrite6ErrorsLeavePacketAlone(t *testing.T) {
	good := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, nil)})
	for name, pkt := range map[string][]byte{
		"empty": {},
		"IPv4":  ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)}),
		"short": good[:39],
		"cut":   good[:len(good)-1],
	} {
		before := bytes.Clone(pkt)
		if _, err := RewriteSource6(pkt, netip.AddrFrom16(pooled6)); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := RewriteDest6(pkt, netip.AddrFrom16(pooled6)); err == nil {
			t.Errorf("%s: no error", name)
		}
		if !bytes.Equal(pkt, before) {
			t.Errorf("%s: packet changed on error", name)
		}
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("10.8.0.1"), netip.MustParseAddr("::ffff:10.8.0.1"), netip.MustParseAddr("fe80::1%eth0")} {
		pkt := bytes.Clone(good)
		if _, err := RewriteSource6(pkt, bad); !errors.Is(err, ErrAddrNotIPv6) {
			t.Errorf("RewriteSource6 to %v: %v", bad, err)
		}
		if !bytes.Equal(pkt, good) {
			t.Errorf("packet changed on error")
		}
	}
}

// TestRewrite6RandomPackets: random packets of every kind, random addresses, extension headers and
// lengths; every checksum verifies after each rewrite and the round trip restores the bytes.
func TestRewrite6RandomPackets(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 2026))
	for i := range 3000 {
		src, dst, pool := randAddr6(rng), randAddr6(rng), randAddr6(rng)
		payload := randBytes(rng, rng.IntN(300))
		spec := pkt6Spec{src: src, dst: dst, pad: rng.IntN(4)}
		if rng.IntN(2) == 0 {
			spec.exts = append(spec.exts, ext6{typ: protoHopByHop, optLen: rng.IntN(3)})
		}
		if rng.IntN(3) == 0 {
			spec.exts = append(spec.exts, ext6{typ: protoDestOpts, optLen: rng.IntN(2)})
		}
		switch k := rng.IntN(5); k {
		case 0:
			spec.proto, spec.l4 = protoTCP, tcpSeg(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
		case 1:
			spec.proto, spec.l4 = protoUDP, udpDgram(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
			spec.noUDPSum = rng.IntN(8) == 0
		case 2:
			spec.proto, spec.l4 = protoICMPv6, icmp6Echo(uint16(rng.Uint32()), uint16(rng.Uint32()), payload)
		case 3, 4:
			// An ICMPv6 error the client sends about a packet sent to it, quoted whole or cut.
			inner := pkt6Spec{src: randAddr6(rng), dst: src, proto: protoUDP}
			inner.l4 = udpDgram(uint16(rng.Uint32()), uint16(rng.Uint32()), payload[:min(len(payload), 40)])
			if k == 4 {
				inner.proto, inner.l4 = protoTCP, tcpSeg(uint16(rng.Uint32()), uint16(rng.Uint32()), payload[:min(len(payload), 40)])
			}
			q := ipv6(inner)
			if rng.IntN(2) == 0 {
				q = q[:len(q)-rng.IntN(len(q)-39)]
			}
			spec.proto, spec.l4 = protoICMPv6, icmpError(uint8(1+rng.IntN(4)), uint8(rng.IntN(8)), q)
		}
		pkt := ipv6(spec)
		verify6(t, pkt)
		roundTrip6(t, pkt, pool)
		if t.Failed() {
			t.Fatalf("packet %d", i)
		}
	}
}

func TestRewrite6DoesNotAllocate(t *testing.T) {
	pkts := [][]byte{
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, make([]byte, 1200))}),
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, make([]byte, 1200))}),
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmpError(2, 0,
			ipv6(pkt6Spec{src: server6, dst: client6, proto: protoUDP, l4: udpDgram(1, 2, nil)}))}),
	}
	p := netip.AddrFrom16(pooled6)
	allocs := testing.AllocsPerRun(100, func() {
		for _, pkt := range pkts {
			old, _ := RewriteSource6(pkt, p)
			mirror6(pkt)
			RewriteDest6(pkt, old)
			mirror6(pkt)
			ParseIPv6(pkt)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func TestICMPv6Unreachable(t *testing.T) {
	exit := netip.AddrFrom16(a6("fd00:8::1"))
	for _, orig := range [][]byte{
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(40000, 25, []byte("EHLO")), pad: 3}),
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, bytes.Repeat([]byte{1}, 1400))}), // quoted cut to fit 1280
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmp6Echo(1, 2, nil)}),
	} {
		buf := make([]byte, 0, 1280)
		out, err := ICMPv6Unreachable(buf, orig, exit, Code6AdminProhibited)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseIPv6(out)
		if err != nil {
			t.Fatal(err)
		}
		total := 40 + int(binary.BigEndian.Uint16(orig[4:]))
		quote := min(total, 1280-48)
		if h.Src != exit || h.Dst != netip.AddrFrom16(client6) || h.Proto != protoICMPv6 || h.ICMPType != 1 ||
			h.ICMPCode != Code6AdminProhibited || h.TotalLen != 48+quote || len(out) != h.TotalLen || len(out) > 1280 {
			t.Fatalf("header %+v", h)
		}
		if !bytes.Equal(out[48:], orig[:quote]) {
			t.Fatal("quote is not the start of the original")
		}
		verify6(t, out)
		if &out[0] != &buf[:1][0] {
			t.Error("did not reuse dst's capacity")
		}
		// The error goes back through the exit's NAT like any packet to the client.
		if _, err := RewriteDest6(out, netip.AddrFrom16(pooled6)); err != nil {
			t.Fatal(err)
		}
		verify6(t, out)
	}
	// Built in the original's own buffer.
	orig := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, bytes.Repeat([]byte{9}, 100))})
	want, _ := ICMPv6Unreachable(nil, orig, exit, Code6PortUnreachable)
	if got, err := ICMPv6Unreachable(orig, orig, exit, Code6PortUnreachable); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("in place: %v\n got %x\nwant %x", err, got, want)
	}
}

func TestICMPv6UnreachableSuppressed(t *testing.T) {
	from := netip.AddrFrom16(a6("fd00:8::1"))
	quoted := ipv6(pkt6Spec{src: server6, dst: client6, proto: protoUDP, l4: udpDgram(1, 2, nil)})
	for name, orig := range map[string][]byte{
		"ICMPv6 error":   ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmpError(1, 4, quoted)}),
		"packet too big": ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmpError(2, 0, quoted)}),
		"later fragment": ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: []byte{1}, noSum: true, exts: []ext6{{typ: protoFragment, offset: 8}}}),
		"to multicast":   ipv6(pkt6Spec{src: client6, dst: a6("ff02::1"), proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from ::":        ipv6(pkt6Spec{src: a6("::"), dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from ::1":       ipv6(pkt6Spec{src: a6("::1"), dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from multicast": ipv6(pkt6Spec{src: a6("ff0e::1"), dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from v4-mapped": ipv6(pkt6Spec{src: a6("::ffff:10.0.0.1"), dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
	} {
		if _, err := ICMPv6Unreachable(nil, orig, from, 1); !errors.Is(err, ErrICMPSuppressed) {
			t.Errorf("%s: %v, want ErrICMPSuppressed", name, err)
		}
	}
	if _, err := ICMPv6Unreachable(nil, []byte{0x60}, from, 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed original: %v", err)
	}
	if _, err := ICMPv6Unreachable(nil, quoted, netip.AddrFrom4(server), 1); !errors.Is(err, ErrAddrNotIPv6) {
		t.Errorf("IPv4 from: %v", err)
	}
}

func TestPool6(t *testing.T) {
	p, err := NewPool6(netip.MustParsePrefix("fd00:8::1/112"), netip.MustParseAddr("fd00:8::1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Prefix() != netip.MustParsePrefix("fd00:8::/112") || p.Cap() != 65533 {
		t.Fatalf("prefix %v cap %d", p.Prefix(), p.Cap())
	}
	a, err := p.Allocate(7)
	if err != nil || a != netip.MustParseAddr("fd00:8::2") {
		t.Fatalf("first address %v, %v: want fd00:8::2", a, err)
	}
	if s, ok := p.Lookup(a); !ok || s != 7 {
		t.Fatalf("Lookup(%v) = %d, %v", a, s, ok)
	}
	for _, miss := range []string{"fd00:8::1", "fd00:8::3", "fd00:9::2", "10.8.0.2", "::ffff:10.8.0.2"} {
		if _, ok := p.Lookup(netip.MustParseAddr(miss)); ok {
			t.Errorf("Lookup(%s) found a session", miss)
		}
	}
	// A /126 has two addresses to hand out, and the last one is not among them.
	small, err := NewPool6(netip.MustParsePrefix("fd00::/126"))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := small.Allocate(1)
	y, _ := small.Allocate(2)
	if _, err := small.Allocate(3); !errors.Is(err, ErrExhausted) || x != netip.MustParseAddr("fd00::1") || y != netip.MustParseAddr("fd00::2") {
		t.Fatalf("/126: %v %v %v", x, y, err)
	}
	for _, c := range []struct {
		prefix string
		want   string
	}{
		{"10.8.0.0/16", "not IPv6"},
		{"::ffff:10.8.0.0/112", "not IPv6"},
		{"fd00::/64", "too large"},
		{"fd00::/127", "too small"},
	} {
		if _, err := NewPool6(netip.MustParsePrefix(c.prefix)); err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("NewPool6(%s): %v, want %q", c.prefix, err, c.want)
		}
	}
	if _, err := NewPool(netip.MustParsePrefix("fd00::/112")); err == nil {
		t.Error("NewPool took an IPv6 prefix")
	}
}

func BenchmarkRewriteSource6TCP(b *testing.B) {
	pkt := ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, make([]byte, 1340))})
	x, y := netip.AddrFrom16(pooled6), netip.AddrFrom16(client6)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		RewriteSource6(pkt, x)
		RewriteSource6(pkt, y)
	}
}

func BenchmarkPoolLookup(b *testing.B) {
	for _, c := range []struct {
		name string
		pool func() (*Pool, error)
	}{
		{"IPv4", func() (*Pool, error) { return NewPool(DefaultPrefix) }},
		{"IPv6", func() (*Pool, error) { return NewPool6(netip.MustParsePrefix("fd00:8::/112")) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := c.pool()
			if err != nil {
				b.Fatal(err)
			}
			a, _ := p.Allocate(1)
			b.ReportAllocs()
			for b.Loop() {
				p.Lookup(a)
			}
		})
	}
}
