package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/tun"
)

var tunAddr6 = netip.MustParseAddr("fd6d:7670:6e00::2")

func ipv6From(n int, src netip.Addr) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	a := src.As16()
	copy(p[8:24], a[:])
	return p
}

// TestIPv6GoesOnlyToAnExitThatCarriesIt (issue 13): the tunnel's IPv6 goes through a circuit whose
// exit carries IPv6 and nowhere else: to any other exit, without a circuit, from another source, it
// is dropped inside the tunnel and counted.
func TestIPv6GoesOnlyToAnExitThatCarriesIt(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := NewDual(dev, tunAddr, tunAddr6, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dev.Inbound <- ipv6From(100, tunAddr6) // no circuit yet
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 1 })

	c := &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetCircuit(c) // an exit without IPv6
	dev.Inbound <- ipv6From(100, tunAddr6)
	dev.Inbound <- ipv4(100)
	waitStats(t, e, func(s Stats) bool { return s.DropIPv6 == 1 && s.PacketsOut == 1 })
	if got := <-c.sent; got[0]>>4 != 4 {
		t.Fatal("IPv6 went to an exit without IPv6")
	}

	e.SetRoute(c, true)
	dev.Inbound <- ipv6From(120, tunAddr6)
	dev.Inbound <- ipv6From(120, netip.MustParseAddr("2001:db8::99")) // a source outside the tunnel
	dev.Inbound <- ipv6From(30, tunAddr6)                             // shorter than its header
	dev.Inbound <- ipv6From(1400, tunAddr6)                           // bigger than a cell carries
	s := waitStats(t, e, func(s Stats) bool {
		return s.PacketsOut == 2 && s.DropForeignSource == 1 && s.DropMalformed == 1 && s.DropTooBig == 1
	})
	if got := <-c.sent; got[0]>>4 != 6 || len(got) != 120 {
		t.Fatalf("sent %x", got)
	}
	if len(c.sent) != 0 || s.DropIPv6 != 1 {
		t.Fatalf("%d more packets went out; stats %+v", len(c.sent), s)
	}

	// Replies come back into the TUN.
	e.Deliver(ipv6From(80, netip.MustParseAddr("2001:db8::10")))
	select {
	case p := <-dev.Outbound:
		if p[0]>>4 != 6 || len(p) != 80 {
			t.Fatalf("delivered %x", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the IPv6 reply did not reach the TUN")
	}
}

// TestIPv6NeverCarriedWithoutAnAddress: an engine with no IPv6 address (New) drops IPv6 both ways,
// even on a circuit to an exit that carries it.
func TestIPv6NeverCarriedWithoutAnAddress(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := New(dev, tunAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetRoute(c, true)
	dev.Inbound <- ipv6From(100, tunAddr6)
	e.Deliver(ipv6From(80, tunAddr6))
	waitStats(t, e, func(s Stats) bool { return s.DropIPv6 == 2 })
	if len(c.sent) != 0 || len(dev.Outbound) != 0 {
		t.Fatal("IPv6 was carried")
	}
	if _, err := NewDual(dev, tunAddr, netip.MustParseAddr("10.0.0.1"), nil); err == nil {
		t.Fatal("an IPv4 address taken as the tunnel's IPv6 one")
	}
}
