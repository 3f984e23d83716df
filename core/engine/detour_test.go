package engine

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/tun"
)

// tcpTo is an IPv4 TCP packet from the tunnel to port.
func tcpTo(port uint16) []byte {
	p := ipv4(60)
	p[9] = 6
	binary.BigEndian.PutUint16(p[22:], port)
	return p
}

// tcp6To is tcpTo for IPv6.
func tcp6To(port uint16) []byte {
	p := ipv6From(80, tunAddr6)
	p[6] = 6
	binary.BigEndian.PutUint16(p[42:], port)
	return p
}

// prohibited6 is the ICMPv6 error an exit sends for a refused IPv6 packet of proto to port.
func prohibited6(code, proto uint8, port uint16) []byte {
	p := make([]byte, 40+8+40+8)
	p[0], p[6] = 0x60, 58
	p[40], p[41] = 1, code
	q := p[48:]
	q[0], q[6] = 0x60, proto
	binary.BigEndian.PutUint16(q[42:], port)
	return p
}

func sentTo(t *testing.T, want *fakeCircuit, others ...*fakeCircuit) []byte {
	t.Helper()
	select {
	case p := <-want.sent:
		for _, o := range others {
			select {
			case q := <-o.sent:
				t.Fatalf("a packet went to the other circuit too: % x", q[:24])
			default:
			}
		}
		return p
	case <-time.After(2 * time.Second):
		t.Fatal("nothing sent through the expected circuit")
	}
	return nil
}

// TestDetoursRouteByFlow (issue 13): a flow with a detour goes through the detour's circuit, every
// other flow through the main one; a later fragment, which carries no port, and IPv6 when the
// detour's exit carries none, stay on the main circuit; removing the detours brings the flow back.
func TestDetoursRouteByFlow(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := NewDual(dev, tunAddr, tunAddr6, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	main, side := &fakeCircuit{sent: make(chan []byte, 16)}, &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetRoute(main, true)
	e.SetDetours(map[Flow]Route{{Proto: 6, Port: 8080}: {C: side}})

	dev.Inbound <- tcpTo(8080)
	if p := sentTo(t, side, main); binary.BigEndian.Uint16(p[22:]) != 8080 {
		t.Fatal("wrong packet through the detour")
	}
	dev.Inbound <- tcpTo(80)
	sentTo(t, main, side)
	frag := tcpTo(8080)
	binary.BigEndian.PutUint16(frag[6:], 100) // fragment offset 800: no transport header
	dev.Inbound <- frag
	sentTo(t, main, side)
	dev.Inbound <- tcp6To(8080) // the detour's exit carries no IPv6
	sentTo(t, main, side)

	e.SetDetours(map[Flow]Route{{Proto: 6, Port: 8080}: {C: side, IPv6: true}})
	dev.Inbound <- tcp6To(8080)
	sentTo(t, side, main)

	e.SetDetours(nil)
	dev.Inbound <- tcpTo(8080)
	sentTo(t, main, side)
	if s := e.Stats(); s.Detoured != 2 || s.PacketsOut != 6 {
		t.Fatalf("stats %+v: want 2 of 6 packets detoured", s)
	}

	// With the main circuit gone, a detoured flow still goes; the others are dropped inside.
	e.SetRoute(nil, false)
	e.SetDetours(map[Flow]Route{{Proto: 6, Port: 8080}: {C: side}})
	dev.Inbound <- tcpTo(80)
	dev.Inbound <- tcpTo(8080)
	sentTo(t, side, main)
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 1 })
}

// TestRefusalHookHoldsBack (issue 13): a refusal the hook takes on is not written into the TUN (the
// program's connection does not fail) and is counted; the others are written as before. IPv6
// refusals are read too.
func TestRefusalHookHoldsBack(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := NewDual(dev, tunAddr, tunAddr6, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var seen []Flow
	e.SetRefusalHook(func(f Flow) bool {
		seen = append(seen, f)
		return f.Port == 8080
	})
	e.Deliver(prohibited(13, 6, 8080))
	e.Deliver(prohibited6(1, 6, 8080))
	e.Deliver(prohibited(13, 6, 25))
	select {
	case p := <-dev.Outbound:
		if binary.BigEndian.Uint16(p[50:]) != 25 {
			t.Fatalf("a held refusal reached the TUN: % x", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the refusal the hook let through never reached the TUN")
	}
	select {
	case p := <-dev.Outbound:
		t.Fatalf("a held refusal reached the TUN: % x", p)
	case <-time.After(50 * time.Millisecond):
	}
	if s := e.Stats(); s.RefusalsHeld != 2 {
		t.Fatalf("held %d, want 2", s.RefusalsHeld)
	}
	want := []Flow{{6, 8080}, {6, 8080}, {6, 25}}
	if len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Fatalf("the hook saw %v, want %v", seen, want)
	}
	if got := e.Refused(); got["tcp/8080"] != 2 || got["tcp/25"] != 1 {
		t.Fatalf("refused %v", got)
	}
	e.SetRefusalHook(nil)
	e.Deliver(prohibited(13, 6, 8080))
	<-dev.Outbound
}

// flowOf reads TCP and UDP ports of both families, and refuses what it cannot read.
func TestFlowOf(t *testing.T) {
	udp := tcpTo(53)
	udp[9] = 17
	short := ipv4(22)
	short[9] = 6
	icmp := ipv4(28)
	icmp[9] = 1
	for _, c := range []struct {
		pkt  []byte
		want Flow
		ok   bool
	}{
		{tcpTo(443), Flow{6, 443}, true},
		{udp, Flow{17, 53}, true},
		{tcp6To(8443), Flow{6, 8443}, true},
		{icmp, Flow{Proto: 1}, true},
		{short, Flow{}, false},
		{ipv4(20), Flow{}, false}, // protocol 0
	} {
		if f, ok := flowOf(c.pkt); f != c.want || ok != c.ok {
			t.Errorf("flowOf(% x…) = %v %v, want %v %v", c.pkt[:12], f, ok, c.want, c.ok)
		}
	}
}
