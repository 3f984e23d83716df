package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func TestICMPUnreachable(t *testing.T) {
	exit := netip.AddrFrom4(server)
	for _, orig := range [][]byte{
		ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(40000, 25, []byte("EHLO")), pad: 3}),
		ipv4(pktSpec{src: client, dst: server, proto: protoUDP, options: 12, l4: udpDgram(1, 2, []byte("abc"))}),
		ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpEcho(1, 2, nil)}),
		ipv4(pktSpec{src: client, dst: server, proto: 47, l4: []byte{1, 2}}), // quote shorter than 8
	} {
		buf := make([]byte, 0, 100)
		out, err := ICMPUnreachable(buf, orig, exit, CodeAdminProhibited)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseIPv4(out)
		if err != nil {
			t.Fatal(err)
		}
		ihl := int(orig[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(orig[2:]))
		quote := ihl + min(8, total-ihl)
		if h.Src != exit || h.Dst != netip.AddrFrom4(client) || h.Proto != protoICMP ||
			h.ICMPType != 3 || h.ICMPCode != CodeAdminProhibited || h.TotalLen != 28+quote || len(out) != h.TotalLen {
			t.Fatalf("header %+v", h)
		}
		if !bytes.Equal(out[28:], orig[:quote]) {
			t.Fatalf("quote %x, want %x", out[28:], orig[:quote])
		}
		verify(t, out)
		if &out[0] != &buf[:1][0] {
			t.Error("did not reuse dst's capacity")
		}
		// The error goes back through the exit's NAT like any packet to the client.
		if _, err := RewriteDest(out, netip.AddrFrom4(pooled)); err != nil {
			t.Fatal(err)
		}
		verify(t, out)
	}
}

func TestICMPUnreachableInPlace(t *testing.T) {
	orig := ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, bytes.Repeat([]byte{9}, 100))})
	want, err := ICMPUnreachable(nil, orig, netip.AddrFrom4(server), CodePortUnreachable)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ICMPUnreachable(orig, orig, netip.AddrFrom4(server), CodePortUnreachable)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("built in the original's buffer:\n got %x\nwant %x", got, want)
	}
}

func TestICMPUnreachableSuppressed(t *testing.T) {
	from := netip.AddrFrom4(server)
	quoted := ipv4(pktSpec{src: server, dst: client, proto: protoUDP, l4: udpDgram(1, 2, nil)})
	frag := ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)})
	binary.BigEndian.PutUint16(frag[6:], 3)
	for name, orig := range map[string][]byte{
		"ICMP error":     ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpError(3, 3, quoted)}),
		"time exceeded":  ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpError(11, 0, quoted)}),
		"later fragment": frag,
		"to multicast":   ipv4(pktSpec{src: client, dst: a4("224.0.0.251"), proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"to broadcast":   ipv4(pktSpec{src: client, dst: a4("255.255.255.255"), proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from 0.0.0.0":   ipv4(pktSpec{src: a4("0.0.0.0"), dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from loopback":  ipv4(pktSpec{src: a4("127.0.0.1"), dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
		"from multicast": ipv4(pktSpec{src: a4("239.1.1.1"), dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)}),
	} {
		if _, err := ICMPUnreachable(nil, orig, from, 13); !errors.Is(err, ErrICMPSuppressed) {
			t.Errorf("%s: %v, want ErrICMPSuppressed", name, err)
		}
	}
	if _, err := ICMPUnreachable(nil, []byte{0x45}, from, 13); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed original: %v", err)
	}
	if _, err := ICMPUnreachable(nil, frag, netip.MustParseAddr("2001:db8::1"), 13); !errors.Is(err, ErrAddrNotIPv4) {
		t.Errorf("IPv6 from: %v", err)
	}
}

func TestICMPUnreachableDoesNotAllocate(t *testing.T) {
	orig := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)})
	buf := make([]byte, 0, 128)
	from := netip.AddrFrom4(server)
	if n := testing.AllocsPerRun(100, func() { buf, _ = ICMPUnreachable(buf, orig, from, 13) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
