package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testQueryTimeout keeps tests that close nodes under a peer's feet short; loopback answers in µs.
const testQueryTimeout = 500 * time.Millisecond

// loopbackConn is a socket on 127.0.0.1 that fails the test if the node ever sends elsewhere (the
// testbed's rule: no DHT node in a test contacts anything but local nodes).
type loopbackConn struct {
	net.PacketConn
	t *testing.T
}

func (c loopbackConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !ua.AddrPort().Addr().Unmap().IsLoopback() {
		c.t.Errorf("node sent a datagram to %v, which is not loopback", addr)
		return 0, fmt.Errorf("test forbids sending to %v", addr)
	}
	return c.PacketConn.WriteTo(b, addr)
}

func listenLoopback(t *testing.T) loopbackConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return loopbackConn{PacketConn: pc, t: t}
}

// testLogger shows warnings and errors of a failing test.
func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// startNode starts a node on a fresh loopback socket; cfg's Conn, Logger and QueryTimeout are filled
// in if unset. The node is closed when the test ends.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = listenLoopback(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = testQueryTimeout
	}
	n, err := New(cfg)
	if err != nil {
		cfg.Conn.Close()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startNetwork starts a first node and size-1 nodes bootstrapped from it, concurrently.
func startNetwork(t *testing.T, size int) []*Node {
	t.Helper()
	first := startNode(t, Config{First: true})
	if err := first.Bootstrap(testContext(t)); err != nil {
		t.Fatalf("first node Bootstrap: %v", err)
	}
	nodes := []*Node{first}
	for range size - 1 {
		nodes = append(nodes, startNode(t, Config{Bootstrap: []netip.AddrPort{first.Addr()}}))
	}
	var wg sync.WaitGroup
	for i, n := range nodes[1:] {
		wg.Go(func() {
			if err := n.Bootstrap(testContext(t)); err != nil {
				t.Errorf("node %d Bootstrap: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// testContext bounds one operation of a test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
