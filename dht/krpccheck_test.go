package dht

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Datagrams that crash a process running anacrolix/dht v2.23.0, each on its own.
var crashers = map[string]string{
	"announce_peer without arguments": "d1:q13:announce_peer1:t2:aa1:y1:qe",
	"put without arguments":           "d1:q3:put1:t2:aa1:y1:qe",
	"one-byte peer value":             "d1:rd2:id20:aaaaaaaaaaaaaaaaaaaa6:valuesl1:aee1:t2:aa1:y1:re",
	"one-byte ip":                     "d2:ip1:a1:rd2:id20:aaaaaaaaaaaaaaaaaaaae1:t2:aa1:y1:re",
}

// Datagrams the library handles, which must pass.
var wellFormed = map[string]string{
	"ping":          "d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe",
	"find_node":     "d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q9:find_node1:t2:aa1:y1:qe",
	"get_peers":     "d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa9:info_hash20:bbbbbbbbbbbbbbbbbbbbe1:q9:get_peers1:t2:aa1:y1:qe",
	"get":           "d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q3:get1:t2:aa1:y1:qe",
	"response":      "d1:rd2:id20:aaaaaaaaaaaaaaaaaaaae1:t2:aa1:y1:re",
	"error":         "d1:eli201e7:Generice1:t2:aa1:y1:ee",
	"trailing byte": "d1:rd2:id20:aaaaaaaaaaaaaaaaaaaae1:t2:aa1:y1:rex",
}

func TestCheckPacketRejectsCrashers(t *testing.T) {
	for name, p := range crashers {
		if _, err := checkPacket([]byte(p)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, p := range wellFormed {
		if _, err := checkPacket([]byte(p)); err != nil {
			t.Errorf("%s: rejected: %v", name, err)
		}
	}
	if _, err := checkPacket([]byte(crashers["one-byte peer value"])); !errors.Is(err, errKRPCPanic) {
		t.Errorf("one-byte value: %v, want the decoder's panic caught", err)
	}
}

// TestHostileDatagramsOverTheSocket sends the crashers to a live node and checks that it is still
// serving afterwards.
func TestHostileDatagramsOverTheSocket(t *testing.T) {
	nodes := startNetwork(t, 2)
	target := nodes[0]
	attacker, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(target.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for _, p := range crashers {
		if _, err := attacker.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	attacker.Write([]byte("not bencode at all"))
	if !waitFor(2*time.Second, func() bool { return target.Stats().Dropped >= uint64(len(crashers)+1) }) {
		t.Errorf("Dropped = %d, want %d", target.Stats().Dropped, len(crashers)+1)
	}
	ih := Infohash{7}
	if err := nodes[1].Announce(testContext(t), ih, 4242); err != nil {
		t.Fatalf("node no longer serving after hostile datagrams: %v", err)
	}
}

// memConn is an in-memory socket that hands its reader one datagram at a time and tells the writer
// when the reader has come back for the next (so the previous one has been handled).
type memConn struct {
	in        chan []byte
	ready     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

var memPeer = net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:6881"))

func newMemConn() *memConn {
	return &memConn{in: make(chan []byte), ready: make(chan struct{}), closed: make(chan struct{})}
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case c.ready <- struct{}{}:
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
	select {
	case p := <-c.in:
		return copy(b, p), memPeer, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

// deliver hands p to the reader and returns once the reader has handled it.
func (c *memConn) deliver(p []byte) {
	c.in <- p
	<-c.ready
}

func (c *memConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
		return len(b), nil
	}
}
func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
func (c *memConn) LocalAddr() net.Addr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:6881"))
}
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzNodeInput hands arbitrary datagrams to a whole node (our check, then the library's parsing and
// query handling). A panic anywhere on that path would crash the process: the fuzzer reports it.
func FuzzNodeInput(f *testing.F) {
	for _, p := range crashers {
		f.Add([]byte(p))
	}
	for _, p := range wellFormed {
		f.Add([]byte(p))
	}
	f.Add([]byte("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa9:info_hash20:bbbbbbbbbbbbbbbbbbbb4:porti-5e5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa1:k32:kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk3:seqi1e3:sig64:ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss5:token2:xx1:v1:xe1:q3:put1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:rd2:id20:aaaaaaaaaaaaaaaaaaaa5:nodes3:abc6:nodes64:abcde1:t2:aa1:y1:re"))

	conn := newMemConn()
	n, err := New(Config{Conn: conn, First: true, QueryTimeout: 100 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	<-conn.ready // the library's reader is waiting
	f.Fuzz(func(t *testing.T, p []byte) {
		conn.deliver(p)
	})
}

func FuzzCheckPacket(f *testing.F) {
	for _, p := range crashers {
		f.Add([]byte(p))
	}
	for _, p := range wellFormed {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		checkPacket(p) // must not panic
	})
}
