package relay

import (
	"context"
	crand "crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/link"
)

// fakeLink is a neighbour in memory: it keeps a copy of every message the relay sends it. When gate is
// set, SendBatch waits for it to close: a next hop that does not read.
type fakeLink struct {
	peer keys.StaticPublic
	gate chan struct{}

	mu   sync.Mutex
	sent [][]byte
}

func newFakeLink(stuck bool) *fakeLink {
	l := &fakeLink{}
	crand.Read(l.peer[:])
	if stuck {
		l.gate = make(chan struct{})
	}
	return l
}

func (l *fakeLink) Send(msg []byte) error {
	l.mu.Lock()
	l.sent = append(l.sent, append([]byte(nil), msg...))
	l.mu.Unlock()
	return nil
}

func (l *fakeLink) SendBatch(msgs [][]byte) (int, error) {
	if l.gate != nil {
		<-l.gate
	}
	for _, m := range msgs {
		_ = l.Send(m)
	}
	return len(msgs), nil
}

func (l *fakeLink) Peer() keys.StaticPublic { return l.peer }

// received returns the cells of command cmd the link was sent.
func (l *fakeLink) received(cmd cell.Command) []cell.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []cell.Header
	for _, m := range l.sent {
		if len(m) >= cell.HeaderLen && cell.Command(m[4]) == cmd {
			h, _, _ := cell.Parse(m, onion.DefaultSizes)
			out = append(out, h)
		}
	}
	return out
}

// destroys returns the reasons of the DESTROY cells the link was sent, by circuit id.
func (l *fakeLink) destroys() map[cell.ID]cell.DestroyReason {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[cell.ID]cell.DestroyReason{}
	for _, m := range l.sent {
		if h, body, err := cell.Parse(m, onion.DefaultSizes); err == nil && h.Command == cell.Destroy {
			out[h.Circuit] = cell.DestroyReason(body[0])
		}
	}
	return out
}

// newTestRelay makes a relay with cfg's limits on a transport without a socket (noSocket): for the
// tests of the relay's own logic, which hand it cells on fake links. Node and keys are filled in.
func newTestRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	cfg.Node = newNoSocket()
	return newRelay(t, cfg)
}

// newRelay fills in cfg's identity and onion key unless it has them, and makes the relay.
func newRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	if cfg.Identity == nil {
		cfg.Identity, _ = keys.GenerateIdentity(crand.Reader)
	}
	if cfg.OnionKeys == nil {
		ok, _ := keys.GenerateStatic(crand.Reader)
		cfg.OnionKeys = []*keys.Static{ok}
	}
	r, err := New(cfg)
	if err != nil {
		cfg.Node.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// startRelay makes a relay on a link node on a fresh loopback socket, with lc's link settings and a
// fresh link key (lc's Conn and Static are filled in), and cfg's with a fresh identity and onion key
// unless it has them; every further handler of the socket (other) is registered before the node
// starts.
func startRelay(t testing.TB, lc link.Config, cfg Config, other ...func([]byte, netip.AddrPort) bool) *Relay {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lc.Conn = conn
	lc.Static, _ = keys.GenerateStatic(crand.Reader)
	node, err := link.New(lc)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	cfg.Node = node
	r := newRelay(t, cfg)
	for _, h := range other {
		if err := node.HandleOther(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

// noSocket is a Transport without a socket: the relay's link handlers are kept (the tests call the
// relay's handlers themselves), it has no links to dial and sends nothing.
type noSocket struct {
	pub      keys.StaticPublic
	mu       sync.Mutex
	handlers link.Handlers
	other    []func([]byte, netip.AddrPort) bool
	closed   bool
}

func newNoSocket() *noSocket {
	k, _ := keys.GenerateStatic(crand.Reader)
	return &noSocket{pub: k.Public()}
}

var errNoSocket = errors.New("relay test: no socket")

func (n *noSocket) SetHandlers(h link.Handlers) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers = h
	return nil
}

func (n *noSocket) HandleOther(h func([]byte, netip.AddrPort) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.other = append(n.other, h)
	return nil
}

func (n *noSocket) Public() keys.StaticPublic { return n.pub }
func (n *noSocket) LocalAddr() netip.AddrPort { return netip.MustParseAddrPort("192.0.2.1:7000") }
func (n *noSocket) Dial(context.Context, netip.AddrPort, keys.StaticPublic) (*link.Link, error) {
	return nil, errNoSocket
}
func (n *noSocket) DialVia(context.Context, keys.StaticPublic, link.Rendezvous) (*link.Link, error) {
	return nil, errNoSocket
}
func (n *noSocket) Register(context.Context, link.Rendezvous, []byte) (*link.Link, error) {
	return nil, errNoSocket
}
func (n *noSocket) Registered() []link.Registered        { return nil }
func (n *noSocket) Paths() [3]int                        { return [3]int{} }
func (n *noSocket) Stats() link.Stats                    { return link.Stats{} }
func (n *noSocket) WriteTo([]byte, netip.AddrPort) error { return errNoSocket }
func (n *noSocket) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	return nil
}

// idFrom returns a circuit id that the peer of l may choose (cell.IDBit), distinct for each n.
func idFrom(r *Relay, l Link, n int) cell.ID {
	return cell.ID(n+1) | cell.IDBit(l.Peer(), r.linkID)
}

// middleCircuit puts a circuit into r's table with prev and next links, as CREATE and EXTEND would have,
// and returns it with the client's keys for it: forward cells wrapped for 2 hops pass this relay on to
// next.
func middleCircuit(t testing.TB, r *Relay, prev, next Link, n int) (*circuit, *onion.Path) {
	t.Helper()
	var k, beyond onion.HopKeys
	k.Suite, beyond.Suite = onion.ChaCha20Poly1305, onion.ChaCha20Poly1305
	crand.Read(k.Forward[:])
	crand.Read(k.Backward[:])
	crand.Read(beyond.Forward[:])
	crand.Read(beyond.Backward[:])
	hop, err := onion.NewHop(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	var client onion.Path
	_ = client.AddHop(k)
	_ = client.AddHop(beyond)
	c := &circuit{seq: r.seq.Add(1), prev: end{prev, idFrom(r, prev, n)}, depth: 1, hop: hop, done: make(chan struct{})}
	c.exit = ExitCircuit{r: r, c: c}
	nx := end{next, cell.ID(n+1) | cell.IDBit(r.linkID, next.Peer())}
	c.next.Store(&nx)
	c.touch()
	if !r.tab.add(c.prev, c) || !r.tab.add(nx, c) {
		t.Fatal("circuit id taken")
	}
	return c, &client
}

// forwardCell returns a RELAY cell for c as its client would send it, carrying a DATA message.
func forwardCell(t testing.TB, c *circuit, client *onion.Path) []byte {
	t.Helper()
	msg := make([]byte, cell.HeaderLen+onion.FullSize)
	body := msg[cell.HeaderLen:]
	if err := cell.PutMsg(body[:onion.PayloadLen(onion.FullSize, 2)], cell.MsgData, []byte("flood")); err != nil {
		t.Fatal(err)
	}
	if err := client.Wrap(body, 2); err != nil {
		t.Fatal(err)
	}
	cell.PutHeader(msg, cell.Header{Circuit: c.prev.id, Command: cell.Relay})
	return msg
}

// createCell returns a CREATE for r with a fresh client handshake, on circuit id.
func createCell(t testing.TB, r *Relay, id cell.ID) []byte {
	t.Helper()
	info := r.Info()
	_, hs, err := ntor.NewClient(crand.Reader, info.Identity, info.Onion, onion.DefaultOffer())
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, cell.HeaderLen+r.cfg.Sizes[0])
	cell.PutHeader(msg, cell.Header{Circuit: id, Command: cell.Create})
	if err := (&cell.CreateBody{Depth: 1, Handshake: hs}).Encode(msg[cell.HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return msg
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}
