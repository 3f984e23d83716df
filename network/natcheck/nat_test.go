package natcheck

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/network/stun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestClassify(t *testing.T) {
	local := ap("192.168.1.5:4000")
	for _, tc := range []struct {
		seen []netip.AddrPort
		want Mapping
	}{
		{nil, Unknown},
		{[]netip.AddrPort{ap("192.168.1.5:4000"), ap("192.168.1.5:4000")}, None},
		{[]netip.AddrPort{ap("192.168.1.5:4000")}, None},
		{[]netip.AddrPort{ap("203.0.113.7:4000"), ap("203.0.113.7:4000")}, EndpointIndependent},
		{[]netip.AddrPort{ap("203.0.113.7:4000")}, Unknown},
		{[]netip.AddrPort{ap("203.0.113.7:4000"), ap("203.0.113.7:4001")}, Dependent},
		{[]netip.AddrPort{ap("203.0.113.7:4000"), ap("203.0.113.8:4000")}, Dependent},
	} {
		if got := Classify(local, tc.seen); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.seen, got, tc.want)
		}
	}
}

// stunServer runs a STUN server on a loopback socket for the test.
func stunServer(t *testing.T, ip net.IP) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	s := stun.Serve(c, 0, nil)
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// socketProber is a prober on a plain socket, with its reader feeding Handle, as a link node's does.
func socketProber(t *testing.T, c *net.UDPConn) *Prober {
	t.Helper()
	p := NewProber(func(pkt []byte, to netip.AddrPort) error {
		_, err := c.WriteToUDPAddrPort(pkt, to)
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.Handle(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return p
}

func TestDetectOnLoopbackIsNoNAT(t *testing.T) {
	servers := []netip.AddrPort{stunServer(t, net.IPv4(127, 0, 0, 1)), stunServer(t, net.IPv4(127, 0, 0, 2))}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := socketProber(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	r, err := p.Detect(ctx, local, servers)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapping != None || r.Public != local || len(r.Seen) != 2 || r.RTT <= 0 {
		t.Fatalf("report %+v", r)
	}
	// A STUN message nobody asked for is not taken.
	req, _, _ := stun.Request()
	if p.Handle(req, servers[0]) {
		t.Fatal("a stray STUN message was taken as an answer")
	}
}

func TestDetectOnAWildcardSocket(t *testing.T) {
	servers := []netip.AddrPort{stunServer(t, net.IPv4(127, 0, 0, 1)), stunServer(t, net.IPv4(127, 0, 0, 2))}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	p := socketProber(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	r, err := p.Detect(ctx, local, servers)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapping != None || r.Local.Addr().IsUnspecified() {
		t.Fatalf("a wildcard socket on loopback: %+v", r)
	}
}

func TestDetectWithoutServers(t *testing.T) {
	c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	p := socketProber(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, err := p.Detect(ctx, c.LocalAddr().(*net.UDPAddr).AddrPort(), nil); err == nil {
		t.Fatal("detected with no servers")
	}
	if _, err := p.Detect(ctx, c.LocalAddr().(*net.UDPAddr).AddrPort(), []netip.AddrPort{ap("127.0.0.1:9")}); err == nil {
		t.Fatal("detected with a server that never answers")
	}
}
