package session

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/link"
)

func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRerouteKeepsTheExitSession runs real relays on loopback with this engine behind the exit: after
// the middle relay dies, the client builds a new circuit through another middle to the same exit,
// presents its token, and its packets leave with the same pool address (so a TCP connection in the
// kernel beyond the exit would survive), and replies reach the new circuit.
// loopNet is four relays on loopback, the last an exit running engine e, and a client.
type loopNet struct {
	relays  []*relay.Relay
	conns   []*net.UDPConn
	client  *client.Client
	replies chan []byte
}

func newLoopNet(t *testing.T, e *Engine, onData func(*client.Circuit, []byte)) *loopNet {
	t.Helper()
	// node makes a link node with the test's timers on a loopback socket: not started, so that the
	// relay or client registers its handlers first.
	node := func(conn *net.UDPConn) *link.Node {
		lk, _ := keys.GenerateStatic(rand.Reader)
		nd, err := link.New(link.Config{Conn: conn, Static: lk, KeepaliveInterval: 100 * time.Millisecond, DeadAfter: 500 * time.Millisecond, HandshakeRetry: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return nd
	}
	n := &loopNet{replies: make(chan []byte, 16)}
	for i := range 4 {
		id, _ := keys.GenerateIdentity(rand.Reader)
		ok, _ := keys.GenerateStatic(rand.Reader)
		conn := loopbackUDP(t)
		n.conns = append(n.conns, conn)
		nd := node(conn)
		cfg := relay.Config{Node: nd, Identity: id, OnionKeys: []*keys.Static{ok}}
		if i == 3 {
			cfg.Exit = func(c *relay.ExitCircuit, typ cell.MsgType, data []byte) { e.Handle(c, typ, data) }
		}
		r, err := relay.New(cfg)
		if err != nil {
			nd.Close()
			t.Fatal(err)
		}
		n.relays = append(n.relays, r)
		t.Cleanup(func() { r.Close() })
		if err := nd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if onData == nil {
		onData = func(_ *client.Circuit, d []byte) { n.replies <- append([]byte(nil), d...) }
	}
	nd := node(loopbackUDP(t))
	cl, err := client.New(client.Config{Node: nd, OnData: onData})
	if err != nil {
		nd.Close()
		t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		cl.Close()
		t.Fatal(err)
	}
	n.client = cl
	t.Cleanup(func() { cl.Close() })
	return n
}

func (n *loopNet) path(idx ...int) []netdir.Relay {
	var p []netdir.Relay
	for _, i := range idx {
		p = append(p, n.relays[i].Info())
	}
	return p
}

func TestRerouteKeepsTheExitSession(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	n := newLoopNet(t, e, nil)
	cl, conns, replies, path := n.client, n.conns, n.replies, n.path
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c1, err := cl.Build(ctx, path(0, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	tk, _, err := c1.Begin(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Send(udp4(clientAddr, server, 40000, 443, []byte("before"))); err != nil {
		t.Fatal(err)
	}
	first := fromTUN(t, dev)

	conns[1].Close() // the middle relay dies without a word
	select {
	case <-c1.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not notice the dead middle")
	}
	c2, err := cl.Build(ctx, path(0, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	again, kept, err := c2.Begin(ctx, &tk)
	if err != nil {
		t.Fatal(err)
	}
	if !kept || again.ID != tk.ID {
		t.Fatal("the exit gave a new session after the reroute")
	}
	if again.Key == tk.Key {
		t.Fatal("the credential did not move on with the re-attach")
	}
	if err := c2.Send(udp4(clientAddr, server, 40000, 443, []byte("after"))); err != nil {
		t.Fatal(err)
	}
	second := fromTUN(t, dev)
	if first.Src != second.Src || !nat.DefaultPrefix.Contains(first.Src) {
		t.Fatalf("source before the reroute %v, after %v", first.Src, second.Src)
	}
	dev.Inbound <- udp4(server, second.Src, 443, 40000, []byte("reply"))
	select {
	case d := <-replies:
		h, err := nat.ParseIPv4(d)
		if err != nil || h.Dst != clientAddr || h.Src != server {
			t.Fatalf("reply %+v %v", h, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the reply did not come back through the new circuit")
	}
	if s := e.Stats(); s.Reattached != 1 || s.Opened != 1 {
		t.Fatalf("%+v", s)
	}
}
