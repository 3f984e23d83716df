package nat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func TestParseIPv4(t *testing.T) {
	tcp := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, options: 8, l4: tcpSeg(40000, 443, []byte("x")), pad: 5})
	h, err := ParseIPv4(tcp)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		Src: netip.AddrFrom4(client), Dst: netip.AddrFrom4(server), Proto: protoTCP,
		HeaderLen: 28, TotalLen: 28 + 21, SrcPort: 40000, DstPort: 443,
	}
	if h != want {
		t.Fatalf("TCP header %+v, want %+v", h, want)
	}

	udp := ipv4(pktSpec{src: client, dst: server, proto: protoUDP, l4: udpDgram(5353, 53, nil)})
	if h, err := ParseIPv4(udp); err != nil || h.SrcPort != 5353 || h.DstPort != 53 || h.TotalLen != 28 {
		t.Fatalf("UDP: %+v, %v", h, err)
	}
	echo := ipv4(pktSpec{src: client, dst: server, proto: protoICMP, l4: icmpEcho(1, 2, nil)})
	if h, err := ParseIPv4(echo); err != nil || h.ICMPType != 8 || h.ICMPCode != 0 || h.SrcPort != 0 {
		t.Fatalf("ICMP: %+v, %v", h, err)
	}
	gre := ipv4(pktSpec{src: client, dst: server, proto: 47, l4: []byte{1, 2, 3}})
	if h, err := ParseIPv4(gre); err != nil || h.Proto != 47 || h.TotalLen != 23 {
		t.Fatalf("GRE: %+v, %v", h, err)
	}
	empty := ipv4(pktSpec{src: client, dst: server, proto: 59})
	if _, err := ParseIPv4(empty); err != nil {
		t.Fatalf("header-only packet: %v", err)
	}
}

func TestParseIPv4Rejects(t *testing.T) {
	tcp := ipv4(pktSpec{src: client, dst: server, proto: protoTCP, l4: tcpSeg(1, 2, nil)})
	with := func(f func(p []byte)) []byte {
		p := bytes.Clone(tcp)
		f(p)
		return p
	}
	setFrag := func(v uint16) []byte { return with(func(p []byte) { binary.BigEndian.PutUint16(p[6:], v) }) }
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrNotIPv4},
		{"version 6", with(func(p []byte) { p[0] = 0x65 }), ErrNotIPv4},
		{"version 0", with(func(p []byte) { p[0] = 0x05 }), ErrNotIPv4},
		{"19 bytes", tcp[:19], ErrMalformed},
		{"IHL 4", with(func(p []byte) { p[0] = 0x44 }), ErrMalformed},
		{"IHL past total", with(func(p []byte) { p[0] = 0x4f }), ErrMalformed},
		{"total past buffer", tcp[:len(tcp)-1], ErrMalformed},
		{"total below header", with(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 19) }), ErrMalformed},
		{"TCP header cut", with(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 39) }), ErrMalformed},
		{"UDP header cut", with(func(p []byte) { p[9] = protoUDP; binary.BigEndian.PutUint16(p[2:], 27) }), ErrMalformed},
		{"ICMP header cut", with(func(p []byte) { p[9] = protoICMP; binary.BigEndian.PutUint16(p[2:], 27) }), ErrMalformed},
		{"TCP fragment at offset 8", setFrag(1), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := ParseIPv4(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	// A first fragment too short for the TCP header is refused; later fragments need none.
	tiny := ipv4(pktSpec{src: client, dst: server, proto: 253, l4: make([]byte, 16)})
	tiny[9] = protoTCP
	binary.BigEndian.PutUint16(tiny[6:], 0x2000)
	if _, err := ParseIPv4(tiny); !errors.Is(err, ErrMalformed) {
		t.Errorf("tiny first fragment: %v", err)
	}
	binary.BigEndian.PutUint16(tiny[6:], 2)
	if h, err := ParseIPv4(tiny); err != nil || !h.Fragment || h.FragOffset != 16 {
		t.Errorf("later fragment: %+v, %v", h, err)
	}
}
