package relay

import (
	crand "crypto/rand"
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

// newTestRelay starts a relay on a loopback socket with cfg's limits (Node and keys are filled in).
func newTestRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	return startRelay(t, link.Config{}, cfg)
}

// startRelay makes a relay on a node on a fresh loopback socket, with lc's link settings and a fresh
// link key (lc's Conn and Static are filled in), and cfg's with a fresh identity and onion key unless
// it has them; every further handler of the socket (other) is registered before the node starts.
func startRelay(t testing.TB, lc link.Config, cfg Config, other ...func([]byte, netip.AddrPort) bool) *Relay {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lc.Conn = conn
	lc.Static, _ = keys.GenerateStatic(crand.Reader)
	if cfg.Node, err = link.New(lc); err != nil {
		conn.Close()
		t.Fatal(err)
	}
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
	for _, h := range other {
		if err := cfg.Node.HandleOther(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Node.Start(); err != nil {
		t.Fatal(err)
	}
	return r
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
