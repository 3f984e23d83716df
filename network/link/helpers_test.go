package link

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link/internal/udp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopback is the only address tests send to.
var loopback = netip.MustParseAddr("127.0.0.1")

// udpLoopback binds a UDP socket on 127.0.0.1 with a port the kernel picks.
func udpLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func newStatic(t testing.TB) *keys.Static {
	t.Helper()
	k, err := keys.GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// delivery is one message as OnMessage saw it.
type delivery struct {
	link *Link
	msg  []byte
}

// linkDown is one OnLinkDown call.
type linkDown struct {
	link *Link
	err  error
	at   time.Time
}

// testNode is a node on a loopback socket whose callbacks feed channels.
type testNode struct {
	*Node
	t     testing.TB
	key   *keys.Static
	pub   keys.StaticPublic
	msgs  chan delivery
	downs chan linkDown
	other atomic.Int64
}

// nodeSetup is what a test node is made with: its configuration, the options Listen does not expose,
// and the handler of the datagrams that are not link packets (by default one that takes them all and
// counts them in testNode.other; nil registers none).
type nodeSetup struct {
	cfg   Config
	o     options
	other func(pkt []byte, from netip.AddrPort) bool
}

type nodeOption func(*nodeSetup)

func withConfig(f func(*Config)) nodeOption {
	return func(s *nodeSetup) { f(&s.cfg) }
}

// withOther replaces the test node's handler of the datagrams that are not link packets; nil leaves
// the node without one.
func withOther(h func(pkt []byte, from netip.AddrPort) bool) nodeOption {
	return func(s *nodeSetup) { s.other = h }
}

// withLimits replaces the handshake rate limits, for tests that inject many handshake messages from
// loopback on purpose.
func withLimits(l limits) nodeOption {
	return func(s *nodeSetup) { s.o.limits = l }
}

// withOffload sets which of UDP GSO and GRO the node may use (both, by default).
func withOffload(gso, gro bool) nodeOption {
	return func(s *nodeSetup) { s.o.offload = udp.Offload{GSO: gso, GRO: gro} }
}

var noLimits = limits{perSourceRate: 1e6, perSourceBurst: 1e6, globalRate: 1e6, globalBurst: 1e6, perLinkRekeyRate: 1e6, perLinkRekeyBurst: 1e6}

func newTestNode(t testing.TB, opts ...nodeOption) *testNode {
	t.Helper()
	tn := &testNode{
		t:     t,
		key:   newStatic(t),
		msgs:  make(chan delivery, 4096),
		downs: make(chan linkDown, 16),
	}
	tn.pub = tn.key.Public()
	cfg := Config{
		Conn:   udpLoopback(t),
		Static: tn.key,
		OnMessage: func(l *Link, msg []byte) {
			select {
			case tn.msgs <- delivery{link: l, msg: append([]byte(nil), msg...)}:
			default:
				t.Errorf("test node's message channel is full")
			}
		},
		OnLinkDown: func(l *Link, err error) {
			tn.downs <- linkDown{link: l, err: err, at: time.Now()}
		},
	}
	s := nodeSetup{cfg: cfg, o: defaultOptions, other: func([]byte, netip.AddrPort) bool { tn.other.Add(1); return true }}
	for _, opt := range opts {
		opt(&s)
	}
	n, err := newNode(s.cfg, s.o)
	if err == nil && s.other != nil {
		err = n.HandleOther(s.other)
	}
	if err == nil {
		err = n.Start()
	}
	if err != nil {
		s.cfg.Conn.Close()
		t.Fatal(err)
	}
	tn.Node = n
	t.Cleanup(func() { n.Close() })
	return tn
}

// dial links a to b and fails the test if it takes more than a few seconds.
func dial(t testing.TB, a, b *testNode) *Link {
	t.Helper()
	return dialAt(t, a, b.LocalAddr(), b.pub)
}

func dialAt(t testing.TB, a *testNode, addr netip.AddrPort, peer keys.StaticPublic) *Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := a.Dial(ctx, addr, peer)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return l
}

// recv waits for the next message delivered to n.
func (n *testNode) recv(t testing.TB) delivery {
	t.Helper()
	select {
	case d := <-n.msgs:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
		return delivery{}
	}
}

// peerLink waits until n has a live link to peer (a responder's link is live once the initiator's
// first packet arrives).
func (n *testNode) peerLink(t testing.TB, peer keys.StaticPublic) *Link {
	t.Helper()
	var l *Link
	eventually(t, 5*time.Second, func() bool { l = n.Link(peer); return l != nil })
	return l
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// direction is which way a packet crosses the proxy.
type direction int

const (
	toB direction = iota // from the dialing node (in front) to the node behind
	toA
)

// proxy is a UDP forwarder between node A (which talks to front) and node B (which sees the proxy's
// back socket). It can record, hold back or rewrite packets, and change its back socket, which to B
// looks like A roaming to a new address.
type proxy struct {
	t      testing.TB
	front  *net.UDPConn
	target netip.AddrPort
	client atomic.Pointer[netip.AddrPort]

	mu   sync.Mutex
	back *net.UDPConn
	// hook, if set, sees every packet before it is forwarded and decides whether it is. It runs on
	// the proxy's goroutine for that direction.
	hook func(dir direction, pkt []byte) bool

	wg sync.WaitGroup
}

func newProxy(t testing.TB, target netip.AddrPort) *proxy {
	p := &proxy{t: t, front: udpLoopback(t), target: target}
	p.back = udpLoopback(t)
	p.wg.Go(p.forwardToB)
	p.startBack(p.back)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() netip.AddrPort { return addrOf(p.front) }

func (p *proxy) backAddr() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return addrOf(p.back)
}

func (p *proxy) setHook(h func(dir direction, pkt []byte) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *proxy) pass(dir direction, pkt []byte) bool {
	p.mu.Lock()
	h := p.hook
	p.mu.Unlock()
	return h == nil || h(dir, pkt)
}

func (p *proxy) forwardToB() {
	buf := make([]byte, 2048)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.client.Store(&from)
		if !p.pass(toB, buf[:n]) {
			continue
		}
		p.mu.Lock()
		back := p.back
		p.mu.Unlock()
		back.WriteToUDPAddrPort(buf[:n], p.target)
	}
}

func (p *proxy) startBack(back *net.UDPConn) {
	p.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !p.pass(toA, buf[:n]) {
				continue
			}
			if c := p.client.Load(); c != nil {
				p.front.WriteToUDPAddrPort(buf[:n], *c)
			}
		}
	})
}

// sendToB sends pkt to B from the proxy's current back socket, as if A had sent it.
func (p *proxy) sendToB(pkt []byte) {
	p.mu.Lock()
	back := p.back
	p.mu.Unlock()
	if _, err := back.WriteToUDPAddrPort(pkt, p.target); err != nil {
		p.t.Errorf("proxy: %v", err)
	}
}

// sendToA sends pkt to A from the proxy's front socket, as if B had sent it.
func (p *proxy) sendToA(pkt []byte) {
	if _, err := p.front.WriteToUDPAddrPort(pkt, *p.client.Load()); err != nil {
		p.t.Errorf("proxy: %v", err)
	}
}

// rebind gives the proxy a new back socket, so B sees A's packets come from a new port.
func (p *proxy) rebind() netip.AddrPort {
	nb := udpLoopback(p.t)
	p.mu.Lock()
	old := p.back
	p.back = nb
	p.mu.Unlock()
	p.startBack(nb)
	old.Close()
	return addrOf(nb)
}

func (p *proxy) close() {
	p.front.Close()
	p.mu.Lock()
	p.back.Close()
	p.mu.Unlock()
	p.wg.Wait()
}

// accounted is the number of datagrams a node has refused or passed on: its drops and its HandleOther handler's.
func accounted(s Stats) uint64 {
	return s.Drops() + s.OtherIn
}

func flipBit(pkt []byte, bit int) []byte {
	c := append([]byte(nil), pkt...)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

// bitsToFlip lists the bits of a packet of size bytes to flip one at a time: every bit of the first
// header bytes and, under the race detector (where each refused handshake costs milliseconds), every
// fifth bit of the rest, which still reaches every byte since 5 and 8 are coprime.
func bitsToFlip(size, header int) []int {
	var bits []int
	for b := range size * 8 {
		if !raceEnabled || b < header*8 || b%5 == 0 {
			bits = append(bits, b)
		}
	}
	return bits
}

// flow keeps the messages in flight to one node within a window. A loopback socket buffer holds only
// a few hundred datagrams and the kernel drops the rest silently when a reader falls behind (as it does
// on a loaded machine under the race detector), so tests that count every message pace themselves
// with this; they test the links, not the kernel's buffer.
type flow struct {
	to     *testNode
	base   uint64
	window int64
	sent   atomic.Int64
}

func newFlow(to *testNode, window int64) *flow {
	return &flow{to: to, base: to.Stats().MessagesIn, window: window}
}

// next waits until one more message may be sent. It gives up waiting after a while, so that a lost
// message slows a test down instead of stopping it; the test's own checks then report the loss.
func (f *flow) next() {
	sent := f.sent.Add(1)
	deadline := time.Now().Add(200 * time.Millisecond)
	for int64(f.to.Stats().MessagesIn-f.base) < sent-f.window && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}
