package nat

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestUDPv4(t *testing.T) {
	src := netip.MustParseAddrPort("10.99.0.1:53")
	dst := netip.MustParseAddrPort("10.99.0.2:40000")
	for _, n := range []int{0, 1, 2, 3, 511, 1232} {
		payload := bytes.Repeat([]byte{0xab, 0x01, 0xff}, n)[:n]
		pkt, err := UDPv4(make([]byte, 0, 10), src, dst, payload)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, pkt)
		h, err := ParseIPv4(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if h.Src != src.Addr() || h.Dst != dst.Addr() || h.SrcPort != 53 || h.DstPort != 40000 || h.Proto != protoUDP || h.Fragment || h.TotalLen != len(pkt) {
			t.Fatalf("%d bytes: header %+v", n, h)
		}
		if !bytes.Equal(pkt[28:], payload) {
			t.Fatalf("%d bytes: payload changed", n)
		}
	}
	if _, err := UDPv4(nil, netip.MustParseAddrPort("[::1]:53"), dst, nil); err != ErrAddrNotIPv4 {
		t.Fatalf("IPv6 source: %v", err)
	}
	if _, err := UDPv4(nil, src, dst, make([]byte, 65536)); err != ErrTooLarge {
		t.Fatalf("64 KiB payload: %v", err)
	}
}
