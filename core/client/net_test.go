package client_test

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/core/relay/relaytest"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ticket"
	"github.com/meshvpn/meshvpn/network/link"
)

// testNet is a client and relays in this process, each on its own 127.0.0.1 UDP socket.
type testNet struct {
	t      testing.TB
	relays []*relay.Relay
	onion  []*keys.Static // each relay's onion key as it started
	conns  []*net.UDPConn
	client *client.Client

	mu       sync.Mutex
	atExit   map[uint32][]byte    // datagrams the exits received, by sequence number
	exits    []*relay.ExitCircuit // circuits seen at exits
	atClient map[uint32][]byte    // datagrams the client received
	dupExit  int
	dupCli   int

	countOnly atomic.Bool   // exits only count what arrives (throughput measurements)
	exitCount atomic.Uint64 // datagrams the exits received while countOnly
}

// netOptions tweaks one test network.
type netOptions struct {
	relays  int
	hostile map[int]func(forward bool, msg []byte) [][]byte
	link    link.Config // timers (Conn and Static are filled in)
	idle    time.Duration
	ratchet time.Duration // the layer-key ratchet's period at the relays and the client
}

func udp(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c
}

// newNode makes a link node, not started, on conn with lc's timers and a fresh link key.
func newNode(t testing.TB, conn *net.UDPConn, lc link.Config) *link.Node {
	t.Helper()
	node, err := client.NewNode(conn, lc)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return node
}

func newNet(t testing.TB, o netOptions) *testNet {
	t.Helper()
	if o.relays == 0 {
		o.relays = 5
	}
	if o.link.DeadAfter == 0 {
		o.link = link.Config{KeepaliveInterval: 200 * time.Millisecond, DeadAfter: time.Second, HandshakeRetry: 200 * time.Millisecond}
	}
	n := &testNet{t: t, atExit: map[uint32][]byte{}, atClient: map[uint32][]byte{}}
	for i := range o.relays {
		id, err := keys.GenerateIdentity(crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := keys.GenerateStatic(crand.Reader)
		conn := udp(t)
		node := newNode(t, conn, o.link)
		r, err := relay.New(relay.Config{
			Node: node, Identity: id, OnionKeys: []*keys.Static{ok},
			Exit: n.onExit, IdleTimeout: o.idle, RatchetEvery: o.ratchet,
		})
		if err != nil {
			node.Close()
			t.Fatal(err)
		}
		if o.hostile[i] != nil {
			relaytest.Tamper(r, o.hostile[i])
		}
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
		n.relays = append(n.relays, r)
		n.onion = append(n.onion, ok)
		n.conns = append(n.conns, conn)
	}
	node := newNode(t, udp(t), o.link)
	c, err := client.New(client.Config{Node: node, OnData: n.onClient, StepTimeout: time.Second, RatchetEvery: o.ratchet})
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	n.client = c
	t.Cleanup(n.close)
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *testNet) close() {
	n.client.Close()
	for _, r := range n.relays {
		r.Close()
	}
}

func (n *testNet) path(idx ...int) []netdir.Relay {
	var p []netdir.Relay
	for _, i := range idx {
		p = append(p, n.relays[i].Info())
	}
	return p
}

func (n *testNet) build(idx ...int) *client.Circuit {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.client.Build(ctx, n.path(idx...))
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

// datagram returns the test datagram with sequence number seq and the given size: the number, then
// bytes derived from it, so that any corruption is seen.
func datagram(seq uint32, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, seq)
	r := rand.NewPCG(uint64(seq), 7)
	for i := 4; i < len(b); i++ {
		b[i] = byte(r.Uint64())
	}
	return b
}

// exitSession is the session id the test exits answer every BEGIN with.
var exitSession = ticket.ID{0xe, 0x1, 0x7}

func (n *testNet) onExit(c *relay.ExitCircuit, t cell.MsgType, data []byte) {
	if t == cell.MsgBegin {
		_ = c.SendMsg(cell.MsgBegun, (&cell.Begun{ID: exitSession}).Encode())
		return
	}
	if t != cell.MsgData {
		return
	}
	if n.countOnly.Load() {
		n.exitCount.Add(1)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.exits) == 0 || n.exits[len(n.exits)-1] != c {
		n.exits = append(n.exits, c)
	}
	if len(data) < 4 {
		return
	}
	seq := binary.BigEndian.Uint32(data)
	if _, dup := n.atExit[seq]; dup {
		n.dupExit++
	}
	n.atExit[seq] = append([]byte(nil), data...)
}

func (n *testNet) onClient(_ *client.Circuit, data []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(data) < 4 {
		return
	}
	seq := binary.BigEndian.Uint32(data)
	if _, dup := n.atClient[seq]; dup {
		n.dupCli++
	}
	n.atClient[seq] = append([]byte(nil), data...)
}

func (n *testNet) counts() (exit, client int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.atExit), len(n.atClient)
}

func (n *testNet) exitCircuit() *relay.ExitCircuit {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.exits) == 0 {
		return nil
	}
	return n.exits[len(n.exits)-1]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
