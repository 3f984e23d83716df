package session

import (
	"context"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/engine"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/tun"
)

// TestFullPathInProcess sends IP packets from a client's TUN through its packet engine, a 3-hop
// circuit of real relays on loopback and the exit's session engine into the exit's TUN, and a reply
// back the whole way; IPv6 never gets past the client.
func TestFullPathInProcess(t *testing.T) {
	exitEngine, exitTUN := newEngine(t, time.Minute)
	clientTUN := tun.NewChannel(1500)
	ce, err := engine.New(clientTUN, clientAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ce.Close()
	n := newLoopNet(t, exitEngine, func(_ *client.Circuit, d []byte) { ce.Deliver(d) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	circ, err := n.client.Build(ctx, n.path(0, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := circ.Begin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ce.SetCircuit(circ)

	v6 := make([]byte, 48)
	v6[0] = 0x60
	clientTUN.Inbound <- v6
	clientTUN.Inbound <- udp4(clientAddr, server, 33333, 53, []byte("dns query"))
	out := fromTUN(t, exitTUN)
	if out.Src == clientAddr || out.Dst != server || out.DstPort != 53 {
		t.Fatalf("at the exit's TUN: %+v", out)
	}
	exitTUN.Inbound <- udp4(server, out.Src, 53, 33333, []byte("dns answer"))
	select {
	case p := <-clientTUN.Outbound:
		h, err := nat.ParseIPv4(p)
		if err != nil || h.Src != server || h.Dst != clientAddr || h.DstPort != 33333 || string(p[28:]) != "dns answer" {
			t.Fatalf("at the client's TUN: %+v %v", h, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the reply never reached the client's TUN")
	}
	// Counters are bumped after the packet has moved on, so they may trail what the test saw by a moment.
	waitFor(t, func() bool { s := ce.Stats(); return s.PacketsOut == 1 && s.PacketsIn == 1 })
	if s := ce.Stats(); s.DropIPv6 != 1 {
		t.Fatalf("client engine %+v", s)
	}
	waitFor(t, func() bool { return exitEngine.Stats().ToInternet == 1 })
	if s := exitEngine.Stats(); s.DropIPv6 != 0 {
		t.Fatalf("exit engine %+v", s)
	}
}
