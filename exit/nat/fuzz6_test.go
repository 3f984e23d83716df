package nat

import (
	"bytes"
	"net/netip"
	"testing"
)

func fuzzSeeds6(f *testing.F) {
	f.Add(ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, []byte("x"))}))
	f.Add(ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil), exts: []ext6{{typ: protoHopByHop}, {typ: protoDestOpts, optLen: 1}}}))
	f.Add(ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil), noUDPSum: true}))
	f.Add(ipv6(pkt6Spec{src: client6, dst: server6, proto: protoICMPv6, l4: icmp6Echo(1, 2, nil)}))
	f.Add(ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: []byte{1, 2, 3}, noSum: true, exts: []ext6{{typ: protoFragment, offset: 16}}}))
	f.Add(ipv6(pkt6Spec{src: server6, dst: client6, proto: protoICMPv6, l4: icmpError(2, 0,
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoTCP, l4: tcpSeg(1, 2, nil), exts: []ext6{{typ: protoDestOpts}}}))}))
	f.Add(ipv6(pkt6Spec{src: server6, dst: client6, proto: protoICMPv6, l4: icmpError(1, 4,
		ipv6(pkt6Spec{src: client6, dst: server6, proto: protoUDP, l4: udpDgram(1, 2, nil)})[:44])}))
	f.Add([]byte{0x60, 0, 0, 0, 0, 0, 59, 64})
	f.Add([]byte{})
}

func FuzzParseIPv6(f *testing.F) {
	fuzzSeeds6(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, err := ParseIPv6(pkt)
		if err != nil {
			return
		}
		if !h.Src.Is6() || !h.Dst.Is6() || h.HeaderLen < 40 || h.HeaderLen > h.TotalLen || h.TotalLen > len(pkt) {
			t.Fatalf("inconsistent header %+v for %d bytes", h, len(pkt))
		}
		if h.FragOffset%8 != 0 || h.FragOffset != 0 && !h.Fragment {
			t.Fatalf("fragment fields %+v", h)
		}
		if h.FragOffset == 0 {
			need := map[uint8]int{protoTCP: 20, protoUDP: 8, protoICMPv6: 8}[h.Proto]
			if h.TotalLen-h.HeaderLen < need {
				t.Fatalf("transport header of %d bytes accepted: %+v", h.TotalLen-h.HeaderLen, h)
			}
		}
	})
}

// FuzzRewrite6 is FuzzRewrite for IPv6: no panic; an input ParseIPv6 refuses is refused and left
// alone; one it accepts comes back from the exit's round trip as it was, but for a UDP checksum of
// 0xFFFF coming back as 0x0000 (the same ones'-complement value).
func FuzzRewrite6(f *testing.F) {
	fuzzSeeds6(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		orig := bytes.Clone(pkt)
		h, perr := ParseIPv6(pkt)
		pool := [16]byte{0xfd, 0, 0, 8, 15: 7}
		for i := 8; bytes.Contains(pkt, pool[:]); i++ {
			pool[14], pool[15] = byte(i>>8), byte(i)
		}
		old, err := RewriteSource6(pkt, netip.AddrFrom16(pool))
		if (err == nil) != (perr == nil) {
			t.Fatalf("ParseIPv6 error %v, RewriteSource6 error %v", perr, err)
		}
		if err != nil {
			if !bytes.Equal(pkt, orig) {
				t.Fatal("refused packet was modified")
			}
			return
		}
		if old != h.Src {
			t.Fatalf("old source %v, header says %v", old, h.Src)
		}
		if old.Is4In6() {
			return // no session has such an address to be given back
		}
		mirror6(pkt)
		if _, err := RewriteDest6(pkt, old); err != nil {
			t.Fatalf("RewriteDest6 after RewriteSource6: %v", err)
		}
		mirror6(pkt)
		for i := 0; i < len(pkt); i++ {
			if pkt[i] == orig[i] {
				continue
			}
			if i+1 < len(pkt) && orig[i] == 0xff && orig[i+1] == 0xff && pkt[i] == 0 && pkt[i+1] == 0 {
				i++
				continue
			}
			t.Fatalf("round trip changed byte %d: %#x -> %#x\n got %x\nwant %x", i, orig[i], pkt[i], pkt, orig)
		}
	})
}
