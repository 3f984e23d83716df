package testnet

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestUDPRequestResponse sends a UDP request from a socket in the client's namespace through the
// tunnel to a UDP echo server on the web network and gets the answer back.
func TestUDPRequestResponse(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := start(t, ctx, Options{Relays: 3, Exits: 1})
	var echo, sock *net.UDPConn
	if err := n.wb.do(func() (err error) {
		echo, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(WebAddr), Port: 5353})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	seen := make(chan *net.UDPAddr, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return
			}
			select {
			case seen <- from:
			default:
			}
			echo.WriteToUDP(append([]byte("echo: "), buf[:k]...), from)
		}
	}()
	if err := n.cl.do(func() (err error) {
		sock, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if _, err := sock.WriteToUDP([]byte("question"), &net.UDPAddr{IP: net.ParseIP(WebAddr), Port: 5353}); err != nil {
		t.Fatal(err)
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	k, _, err := sock.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no UDP answer through the tunnel: %v", err)
	}
	if string(buf[:k]) != "echo: question" {
		t.Fatalf("answer %q", buf[:k])
	}
	if from := <-seen; from.IP.String() != "203.0.113.1" {
		t.Fatalf("the UDP server saw %v, not the exit", from)
	}
}
