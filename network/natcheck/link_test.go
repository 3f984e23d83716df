package natcheck

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link"
)

// TestDetectOverTheDataPlaneSocket asks through a link node's own socket (WriteTo out, OnOther in),
// so the mapping found is the one the node's links have.
func TestDetectOverTheDataPlaneSocket(t *testing.T) {
	servers := []netip.AddrPort{stunServer(t, net.IPv4(127, 0, 0, 1)), stunServer(t, net.IPv4(127, 0, 0, 3))}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.GenerateStatic(rand.Reader)
	var p atomic.Pointer[Prober] // set once the node exists; its reader may run before
	node, err := link.Listen(link.Config{Conn: c, Static: k, OnMessage: func(*link.Link, []byte) {},
		OnOther: func(pkt []byte, from netip.AddrPort) bool {
			pr := p.Load()
			return pr != nil && pr.Handle(pkt, from)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	p.Store(NewProber(node.WriteTo))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := p.Load().Detect(ctx, node.LocalAddr(), servers)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapping != None || r.Public != node.LocalAddr() {
		t.Fatalf("report %+v for %v", r, node.LocalAddr())
	}
}
