package natcheck

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link"
)

// TestDetectOverTheDataPlaneSocket asks through a link node's own socket (WriteTo out, HandleOther in),
// so the mapping found is the one the node's links have.
func TestDetectOverTheDataPlaneSocket(t *testing.T) {
	servers := []netip.AddrPort{stunServer(t, net.IPv4(127, 0, 0, 1)), stunServer(t, net.IPv4(127, 0, 0, 3))}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.GenerateStatic(rand.Reader)
	node, err := link.New(link.Config{Conn: c, Static: k, OnMessage: func(*link.Link, []byte) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	p := NewProber(node.WriteTo) // registered before the node reads: no answer can come too early
	if err := node.HandleOther(p.Handle); err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := p.Detect(ctx, node.LocalAddr(), servers)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapping != None || r.Public != node.LocalAddr() {
		t.Fatalf("report %+v for %v", r, node.LocalAddr())
	}
}
