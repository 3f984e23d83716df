package link

import (
	"crypto/rand"
	"net"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

func TestListenSizesTheSocketBuffers(t *testing.T) {
	for _, tc := range []struct {
		size int
		want int // at least, as the kernel reports it
	}{{0, DefaultSocketBuffer}, {1 << 20, 1 << 20}} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		before, _, _ := udp.Buffers(c)
		k, _ := keys.GenerateStatic(rand.Reader)
		n, err := Listen(Config{Conn: c, Static: k, OnMessage: func(*Link, []byte) {}, SocketBuffer: tc.size})
		if err != nil {
			t.Fatal(err)
		}
		rcv, snd, err := udp.Buffers(c)
		n.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rcv < tc.want || snd < tc.want {
			t.Errorf("SocketBuffer %d: buffers %d/%d (before: %d), want at least %d (run as root for sizes above rmem_max)", tc.size, rcv, snd, before, tc.want)
		}
	}
}
