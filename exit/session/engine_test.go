package session

import (
	crand "crypto/rand"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/ticket"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/tun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCircuit records what the engine sends back to the client.
type fakeCircuit struct {
	id      uint64
	binding [32]byte
	msgs    chan msg
	done    chan struct{}
}

type msg struct {
	t    cell.MsgType
	data []byte
}

func newCircuit(id uint64) *fakeCircuit {
	c := &fakeCircuit{id: id, msgs: make(chan msg, 64), done: make(chan struct{})}
	_, _ = crand.Read(c.binding[:])
	return c
}

func (c *fakeCircuit) SendMsg(t cell.MsgType, data []byte) error {
	c.msgs <- msg{t, append([]byte(nil), data...)}
	return nil
}
func (c *fakeCircuit) ID() uint64            { return c.id }
func (c *fakeCircuit) Done() <-chan struct{} { return c.done }
func (c *fakeCircuit) Binding() [32]byte     { return c.binding }

func (c *fakeCircuit) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(2 * time.Second):
		t.Fatal("nothing came back on the circuit")
		return msg{}
	}
}

var (
	clientAddr = netip.MustParseAddr("10.99.0.2") // the client's TUN address
	server     = netip.MustParseAddr("198.51.100.7")
	self       = netip.MustParseAddr("10.8.0.1")
)

// udp4 builds an IPv4 UDP packet with correct checksums.
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^sum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	pseudo := uint32(0)
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	pseudo += 17 + uint32(8+len(payload))
	c := ^sum(p[20:], pseudo)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], c)
	return p
}

func sum(b []byte, acc uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

func newEngine(t *testing.T, grace time.Duration) (*Engine, *tun.Channel) {
	t.Helper()
	pool, err := nat.NewPool(nat.DefaultPrefix, self)
	if err != nil {
		t.Fatal(err)
	}
	dev := tun.NewChannel(1500)
	e, err := New(Config{TUN: dev, Pool: pool, Self: self, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, dev
}

// ask sends a BEGIN and returns the BEGUN.
func ask(t *testing.T, e *Engine, c *fakeCircuit, req cell.Begin) cell.Begun {
	t.Helper()
	e.Handle(c, cell.MsgBegin, req.Encode())
	m := c.next(t)
	got, err := cell.DecodeBegun(m.data)
	if m.t != cell.MsgBegun || err != nil {
		t.Fatalf("BEGIN answered with %v %d bytes: %v", m.t, len(m.data), err)
	}
	return got
}

// begin opens a new session on c, as a client does, and returns the client's ticket.
func begin(t *testing.T, e *Engine, c *fakeCircuit) ticket.Ticket {
	t.Helper()
	got := ask(t, e, c, cell.Begin{})
	if got.Kept {
		t.Fatal("a new session came back as kept")
	}
	return ticket.Ticket{ID: got.ID, Key: ticket.Open(got.ID, c.binding)}
}

// reattachReq is the BEGIN a client holding tk sends on c.
func reattachReq(tk ticket.Ticket, c *fakeCircuit) cell.Begin {
	return cell.Begin{Reattach: true, ID: tk.ID, Proof: ticket.Proof(tk.Key, tk.ID, c.binding)}
}

// reattach asks to move tk's session to c, as a client does, and returns the ticket the client then
// keeps and whether the exit kept the session.
func reattach(t *testing.T, e *Engine, c *fakeCircuit, tk ticket.Ticket) (ticket.Ticket, bool) {
	t.Helper()
	got := ask(t, e, c, reattachReq(tk, c))
	if got.Kept {
		return ticket.Ticket{ID: got.ID, Key: ticket.Next(tk.Key, c.binding)}, true
	}
	return ticket.Ticket{ID: got.ID, Key: ticket.Open(got.ID, c.binding)}, false
}

func fromTUN(t *testing.T, dev *tun.Channel) nat.Header {
	t.Helper()
	select {
	case p := <-dev.Outbound:
		h, err := nat.ParseIPv4(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum(p[:20], 0) != 0xffff {
			t.Fatal("IP header checksum wrong after NAT")
		}
		return h
	case <-time.After(2 * time.Second):
		t.Fatal("nothing reached the TUN")
		return nat.Header{}
	}
}

func TestPacketsGoOutWithThePoolAddressAndRepliesComeBack(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c := newCircuit(1)
	if tk := begin(t, e, c); tk.ID == (ticket.ID{}) {
		t.Fatal("zero session id")
	}
	e.Handle(c, cell.MsgData, udp4(clientAddr, server, 5000, 53, []byte("query")))
	h := fromTUN(t, dev)
	if h.Src == clientAddr || !nat.DefaultPrefix.Contains(h.Src) || h.Dst != server {
		t.Fatalf("to the internet: %v -> %v", h.Src, h.Dst)
	}
	dev.Inbound <- udp4(server, h.Src, 53, 5000, []byte("answer"))
	m := c.next(t)
	r, err := nat.ParseIPv4(m.data)
	if err != nil || m.t != cell.MsgData || r.Dst != clientAddr || r.Src != server || r.DstPort != 5000 {
		t.Fatalf("reply: %v %+v %v", m.t, r, err)
	}
	waitFor(t, func() bool { s := e.Stats(); return s.ToInternet == 1 && s.FromInternet == 1 })
	if s := e.Stats(); s.Sessions != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestPolicyDeniesLocalDestinationsWithICMP(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c := newCircuit(1)
	begin(t, e, c)
	for _, dst := range []string{"127.0.0.1", "192.168.1.1", "169.254.169.254", "10.8.0.1"} {
		e.Handle(c, cell.MsgData, udp4(clientAddr, netip.MustParseAddr(dst), 5000, 80, []byte("x")))
		m := c.next(t)
		h, err := nat.ParseIPv4(m.data)
		if err != nil || h.Proto != 1 || h.ICMPType != 3 || h.Dst != clientAddr {
			t.Fatalf("%s: answer %+v %v, want ICMP unreachable to the client", dst, h, err)
		}
	}
	select {
	case p := <-dev.Outbound:
		t.Fatalf("a denied packet reached the TUN: % x", p[:20])
	default:
	}
	if s := e.Stats(); s.DropPolicy != 4 || s.ToInternet != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestSessionSurvivesACircuitRebuild(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c1 := newCircuit(1)
	tk := begin(t, e, c1)
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("a")))
	before := fromTUN(t, dev).Src

	close(c1.done) // the middle relay died
	waitFor(t, func() bool { e.mu.RLock(); defer e.mu.RUnlock(); return len(e.byCirc) == 0 })
	// A reply while no circuit is attached is dropped, not misdelivered.
	dev.Inbound <- udp4(server, before, 443, 5000, []byte("lost"))
	waitFor(t, func() bool { return e.Stats().DropNoCircuit == 1 })

	c2 := newCircuit(2)
	if _, kept := reattach(t, e, c2, tk); !kept {
		t.Fatal("re-attach gave a new session")
	}
	e.Handle(c2, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("b")))
	if after := fromTUN(t, dev).Src; after != before {
		t.Fatalf("pool address changed across the rebuild: %v then %v", before, after)
	}
	dev.Inbound <- udp4(server, before, 443, 5000, []byte("reply"))
	if m := c2.next(t); m.t != cell.MsgData {
		t.Fatal("reply did not reach the new circuit")
	}
	if s := e.Stats(); s.Reattached != 1 || s.Opened != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestDetachedSessionExpiresAfterGrace(t *testing.T) {
	e, _ := newEngine(t, 50*time.Millisecond)
	c1 := newCircuit(1)
	tk := begin(t, e, c1)
	close(c1.done)
	waitFor(t, func() bool { return e.Stats().Expired == 1 })
	if _, kept := reattach(t, e, newCircuit(2), tk); kept {
		t.Fatal("an expired session's ticket still worked")
	}
	if s := e.Stats(); s.ReattachExpired != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestDropsAreCounted(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c := newCircuit(1)
	e.Handle(c, cell.MsgData, udp4(clientAddr, server, 1, 2, nil)) // before BEGIN
	begin(t, e, c)
	v6 := make([]byte, 40)
	v6[0] = 0x60
	e.Handle(c, cell.MsgData, v6)
	sctp := udp4(clientAddr, server, 1, 2, nil)
	sctp[9] = 132
	e.Handle(c, cell.MsgData, sctp)
	e.Handle(c, cell.MsgData, []byte{0x45, 0, 0})
	e.Handle(c, cell.MsgBegin, []byte{1, 2, 3})
	dev.Inbound <- udp4(server, netip.MustParseAddr("10.8.200.200"), 1, 2, nil) // no session has it
	waitFor(t, func() bool { return e.Stats().DropUnknownDest == 1 })
	s := e.Stats()
	if s.DropNoSession != 1 || s.DropIPv6 != 1 || s.DropProtocol != 1 || s.DropMalformed != 2 || s.ToInternet != 0 {
		t.Fatalf("%+v", s)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The session's address inside the client's tunnel is fixed by its first packet: a packet from another
// source (a connection the client made outside its tunnel, routed in later) is dropped and counted,
// and replies keep going to the first address — also after a rebuilt circuit re-attached.
func TestInnerAddressIsFixedByTheFirstPacket(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c1 := newCircuit(1)
	tk := begin(t, e, c1)
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 53, []byte("one")))
	pool := fromTUN(t, dev).Src
	c2 := newCircuit(2)
	reattach(t, e, c2, tk)
	lan := netip.MustParseAddr("192.168.103.2")
	e.Handle(c2, cell.MsgData, udp4(lan, server, 5001, 53, []byte("stray")))
	waitFor(t, func() bool { return e.Stats().DropForeignSource == 1 })
	select {
	case p := <-dev.Outbound:
		t.Fatalf("a packet from %v reached the internet: %x", lan, p[:20])
	default:
	}
	dev.Inbound <- udp4(server, pool, 53, 5000, []byte("answer"))
	r, err := nat.ParseIPv4(c2.next(t).data)
	if err != nil || r.Dst != clientAddr {
		t.Fatalf("the reply went to %v (%v), not %v", r.Dst, err, clientAddr)
	}
}
