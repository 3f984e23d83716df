package nat

import (
	"bytes"
	"net/netip"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	f.Add(ipv4(pktSpec{src: client, dst: server, proto: protoTCP, options: 4, l4: tcpSeg(1, 2, []byte("x"))}))
	f.Add(ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)}))
	f.Add(ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil), noUDPSum: true}))
	f.Add(ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpEcho(1, 2, nil)}))
	f.Add(ipv4(pktSpec{src: server, dst: client, proto: protoICMP, l4: icmpError(3, 4,
		ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(1, 2, nil)}))}))
	f.Add(ipv4(pktSpec{src: server, dst: client, proto: protoICMP, l4: icmpError(11, 0,
		ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)})[:28])}))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Add([]byte{})
}

func FuzzParseIPv4(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, err := ParseIPv4(pkt)
		if err != nil {
			return
		}
		if !h.Src.Is4() || !h.Dst.Is4() || h.HeaderLen < 20 || h.HeaderLen > h.TotalLen || h.TotalLen > len(pkt) {
			t.Fatalf("inconsistent header %+v for %d bytes", h, len(pkt))
		}
		if h.FragOffset%8 != 0 || h.FragOffset != 0 && !h.Fragment {
			t.Fatalf("fragment fields %+v", h)
		}
	})
}

// FuzzRewrite holds the rewrites to three promises on any input: no panic; an input ParseIPv4
// refuses is refused and left alone; and for one it accepts, the exit's round trip (source to a
// pool address, mirror, destination back, mirror) gives the input back. The one allowed difference
// is a checksum that held 0xFFFF coming back as 0x0000: the same ones'-complement value, the only
// spelling a full computation produces (RFC 1624 section 3).
func FuzzRewrite(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		orig := bytes.Clone(pkt)
		h, perr := ParseIPv4(pkt)
		// A pool address found nowhere in the input, so that a quoted address that was not
		// rewritten cannot be mistaken on the way back for one that was.
		pool := [4]byte{10, 8, 0, 7}
		for i := 8; bytes.Contains(pkt, pool[:]); i++ {
			pool = [4]byte{10, 8, byte(i >> 8), byte(i)}
		}
		old, err := RewriteSource(pkt, netip.AddrFrom4(pool))
		if (err == nil) != (perr == nil) {
			t.Fatalf("ParseIPv4 error %v, RewriteSource error %v", perr, err)
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
		mirror(pkt)
		if _, err := RewriteDest(pkt, old); err != nil {
			t.Fatalf("RewriteDest after RewriteSource: %v", err)
		}
		mirror(pkt)
		for i := 0; i < len(pkt); i++ {
			if pkt[i] == orig[i] {
				continue
			}
			if i%2 == 0 && i+1 < len(pkt) && orig[i] == 0xff && orig[i+1] == 0xff && pkt[i] == 0 && pkt[i+1] == 0 {
				i++
				continue
			}
			t.Fatalf("round trip changed byte %d: %#x -> %#x\n got %x\nwant %x", i, orig[i], pkt[i], pkt, orig)
		}
	})
}
