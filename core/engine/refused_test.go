package engine

import (
	"encoding/binary"
	"testing"

	"github.com/meshvpn/meshvpn/network/tun"
)

// prohibited is the ICMP error an exit sends for a refused packet: type 3, the given code, quoting the
// IP header of a packet of proto to port.
func prohibited(code, proto uint8, port uint16) []byte {
	p := make([]byte, 20+8+20+8)
	p[0], p[9] = 0x45, 1
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], []byte{10, 77, 0, 1}) // the exit
	copy(p[16:20], tunAddr.AsSlice())
	p[20], p[21] = 3, code
	q := p[28:]
	q[0], q[9] = 0x45, proto
	copy(q[12:16], tunAddr.AsSlice())
	copy(q[16:20], []byte{203, 0, 113, 10})
	binary.BigEndian.PutUint16(q[22:], port)
	return p
}

// A refusal that comes back through the circuit is counted by protocol and port, and still written
// into the TUN, where the kernel fails the program's connection with it.
func TestRefusalsAreCountedByPort(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := New(dev, tunAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, p := range [][]byte{
		prohibited(13, 6, 25), prohibited(13, 6, 25), prohibited(10, 17, 53), prohibited(13, 1, 0),
		prohibited(3, 6, 80),       // port unreachable: not a refusal
		prohibited(13, 6, 80)[:40], // too short to quote a header
	} {
		e.Deliver(p)
		<-dev.Outbound
	}
	got := e.Refused()
	want := map[string]uint64{"tcp/25": 2, "udp/53": 1, "icmp": 1}
	if len(got) != len(want) {
		t.Fatalf("refused %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("refused %v, want %v", got, want)
		}
	}
}

// The counts are bounded: past maxRefusalKeys pairs, refusals go to "other".
func TestRefusalKeysAreBounded(t *testing.T) {
	var r refusals
	for port := range maxRefusalKeys + 10 {
		r.note(prohibited(13, 6, uint16(port+1)))
	}
	if len(r.n) != maxRefusalKeys+1 || r.n[Flow{}] != 10 {
		t.Fatalf("%d keys, other %d", len(r.n), r.n[Flow{}])
	}
}

// Noting a packet costs no allocation once its key is known, and none at all for other packets.
func TestRefusalNoteDoesNotAllocate(t *testing.T) {
	var r refusals
	ref, data := prohibited(13, 6, 25), ipv4(1200)
	r.note(ref)
	if n := testing.AllocsPerRun(100, func() { r.note(ref); r.note(data) }); n != 0 {
		t.Fatalf("%v allocations per note", n)
	}
}

func FuzzRefusalOf(f *testing.F) {
	f.Add(prohibited(13, 6, 25))
	f.Add(prohibited(9, 17, 53))
	f.Add(ipv4(20))
	f.Add(prohibited6(1, 6, 443))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < 20 {
			return // Deliver notes only packets of a whole IPv4 header
		}
		var r refusals
		r.note(pkt)
		if k, ok := refusalOf(pkt); ok && k.Proto == 0 {
			t.Fatalf("a refusal counted as other: %v", k)
		}
	})
}
