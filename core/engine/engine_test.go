package engine

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/network/tun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeCircuit struct{ sent chan []byte }

func (c *fakeCircuit) Send(d []byte) error { c.sent <- append([]byte(nil), d...); return nil }
func (c *fakeCircuit) SendBatch(ds [][]byte) (int, error) {
	for _, d := range ds {
		c.Send(d)
	}
	return len(ds), nil
}
func (c *fakeCircuit) MaxData() int          { return 1332 }
func (c *fakeCircuit) Done() <-chan struct{} { return nil }

// tunAddr is the tunnel's address in these tests.
var tunAddr = netip.MustParseAddr("10.99.0.2")

func ipv4(n int) []byte { return ipv4From(n, tunAddr) }

func ipv4From(n int, src netip.Addr) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	a := src.As4()
	copy(p[12:16], a[:])
	return p
}

func waitStats(t *testing.T, e *Engine, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := e.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never matched: %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPacketsFollowTheCircuitAndNothingLeaksWithout(t *testing.T) {
	dev := tun.NewChannel(4000) // above the circuit's limit, so the engine is the one to refuse big packets
	e, err := New(dev, tunAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	dev.Inbound <- ipv4(100) // no circuit yet
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 1 })

	c := &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetCircuit(c)
	dev.Inbound <- ipv4(200)
	v6 := make([]byte, 60)
	v6[0] = 0x60
	dev.Inbound <- v6
	dev.Inbound <- ipv4(2000) // bigger than a cell carries
	s := waitStats(t, e, func(s Stats) bool { return s.PacketsOut == 1 && s.DropIPv6 == 1 && s.DropTooBig == 1 })
	if got := <-c.sent; len(got) != 200 {
		t.Fatalf("sent %d bytes", len(got))
	}
	if len(c.sent) != 0 {
		t.Fatalf("%d unexpected packets went out (stats %+v)", len(c.sent), s)
	}

	e.Deliver(ipv4(300))
	e.Deliver(v6)
	if got := <-dev.Outbound; len(got) != 300 {
		t.Fatalf("delivered %d bytes", len(got))
	}
	waitStats(t, e, func(s Stats) bool { return s.PacketsIn == 1 && s.DropIPv6 == 2 })

	e.SetCircuit(nil)
	dev.Inbound <- ipv4(100)
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 2 })
}

// A packet the routes send into the tunnel from a connection made outside it (its source is the LAN
// address) is dropped: the exit would otherwise take its source for the client's and answer every
// flow of the session there (it once reset a download in the middle of a reroute test).
func TestForeignSourceStaysOut(t *testing.T) {
	dev := tun.NewChannel(1500)
	e, err := New(dev, tunAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetCircuit(c)
	dev.Inbound <- ipv4From(100, netip.MustParseAddr("192.168.1.20"))
	dev.Inbound <- ipv4(120)
	waitStats(t, e, func(s Stats) bool { return s.DropForeignSource == 1 && s.PacketsOut == 1 })
	if got := <-c.sent; len(got) != 120 {
		t.Fatalf("sent a %d-byte packet", len(got))
	}
	if _, err := New(dev, netip.MustParseAddr("fd00::2"), nil); err == nil {
		t.Fatal("an IPv6 tunnel address was taken")
	}
}
