package link

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// manualClock is a node clock that moves only when a test says. A responder on it never refills a
// budget that a flood has spent, so whatever gets in under the flood gets in for a reason, not by luck
// of timing.
type manualClock struct {
	base time.Time
	off  atomic.Int64
}

func newManualClock() *manualClock { return &manualClock{base: time.Now()} }

func (c *manualClock) now() time.Time { return c.base.Add(time.Duration(c.off.Load())) }

func (c *manualClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// spoofer injects junk initiations into a node as if they came from the given sources, straight into
// its packet handler: the test's stand-in for a flood with forged source addresses. Every junk
// initiation has the right mac1, as anyone who knows the node's key (a relay's is public) can make.
type spoofer struct {
	to      *testNode
	sources []netip.AddrPort
	r       reader
	sent    int
	// proven gives each initiation the right mac2 for its source, as a botnet that owns its addresses
	// and collects their cookies can.
	proven bool
}

func newSpoofer(to *testNode, n int, also ...netip.AddrPort) *spoofer {
	s := &spoofer{to: to, sources: append([]netip.AddrPort(nil), also...)}
	for i := 0; len(s.sources) < n; i++ {
		s.sources = append(s.sources, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), uint16(40000+i%1000)))
	}
	return s
}

// flood sends count junk initiations, one from each source in turn.
func (s *spoofer) flood(count int) {
	for range count {
		pkt, src := junkInitiation(s.to.pub, true), s.sources[s.sent%len(s.sources)]
		if s.proven {
			c := s.to.cookies.cookie(route{addr: src}, s.to.clock())
			putMAC2(pkt, &c)
		}
		s.to.handlePacket(&s.r, pkt, src)
		s.sent++
	}
}

// A flood of initiations with the right mac1 from 2,000 forged sources — among them the very addresses
// of the real initiators — does not keep real initiators out: the responder, under load, answers
// unproven initiations with cookie replies, a real initiator proves its address with mac2 and gets in
// on the proven budget, and the forged sources never touch a real one's per-source bucket. The
// responder's clock stands still, so the budgets the flood spends never refill: before cookies, the
// flood took the one global budget and no real initiation got in at all.
func TestSpoofedHandshakeFloodLetsRealHandshakesIn(t *testing.T) {
	const initiators, sources = 20, 2000
	clk := newManualClock()
	b := newTestNode(t, withConfig(func(c *Config) {
		c.Now = clk.now
		c.OnLinkDown = nil // more links than the test node's channel holds
	}))
	as := make([]*testNode, initiators)
	var real []netip.AddrPort
	for i := range as {
		as[i] = newTestNode(t)
		real = append(real, as[i].LocalAddr())
	}
	sp := newSpoofer(b, sources, real...)
	sp.flood(2 * defaultLimits.globalBurst) // spends the open budget and fills the queue
	if !b.underLoad(b.clock()) {
		t.Fatal("b is not under load after the flood's first wave")
	}

	var ok atomic.Int64
	var errs sync.Map
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := a.Dial(ctx, b.LocalAddr(), b.pub); err != nil {
				errs.Store(i, err)
				return
			}
			ok.Add(1)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// The flood goes on while they dial, bounded in count.
	for flooding := true; flooding && sp.sent < 200_000; {
		select {
		case <-done:
			flooding = false
		default:
			sp.flood(100)
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	errs.Range(func(k, v any) bool { t.Logf("initiator %d: %v", k, v); return true })

	s := b.Stats()
	t.Logf("junk %d, b: %+v", sp.sent, s)
	if got := ok.Load(); got != initiators {
		t.Fatalf("%d of %d real initiators got in under the flood", got, initiators)
	}
	var cookies uint64
	for _, a := range as {
		cookies += a.Stats().CookieRepliesIn
	}
	if cookies < initiators {
		t.Fatalf("the initiators took %d cookie replies, want at least one each", cookies)
	}
	// The open budget never refilled, so it bounds the DHs the flood cost: every other junk initiation
	// was answered with a cookie reply and cost none.
	junkDH := s.HandshakesFailed
	if junkDH > uint64(defaultLimits.globalBurst) {
		t.Fatalf("%d DHs spent on junk, more than the open budget of %d", junkDH, defaultLimits.globalBurst)
	}
	if s.DropCookie+junkDH < uint64(sp.sent) {
		t.Fatalf("%d junk initiations: %d cookie replies and %d DHs account for them", sp.sent, s.DropCookie, junkDH)
	}
}

// A live link keeps rekeying during a flood, on its own budget: its rekeys name the session they
// replace and come from the link's address, so they neither wait for a cookie nor compete with the
// flood — not even with one from 2,000 addresses that the attacker owns and proves (mac2), which
// spends the proven budget. Before the rekey budget, a flood spent the one global budget and every
// rekey was refused until the link's keys expired.
func TestFloodDoesNotStopRekeys(t *testing.T) {
	const rekeyAfter = time.Second
	// Both clocks are the test's: b's budgets never refill, and a rekeys (or retries) only when its
	// clock is moved on, so every rekey counted below was made under the flood.
	bclk, aclk := newManualClock(), newManualClock()
	b := newTestNode(t, withConfig(func(c *Config) { c.Now = bclk.now }))
	a := newTestNode(t, withConfig(func(c *Config) { c.Now = aclk.now; c.RekeyAfter = rekeyAfter }))
	l := dial(t, a, b)
	spoofed, botnet := newSpoofer(b, 2000, a.LocalAddr()), newSpoofer(b, 2000)
	botnet.sources = botnet.sources[1:] // not a's address: a botnet proves only its own
	botnet.proven = true
	spoofed.flood(2 * defaultLimits.globalBurst)
	botnet.flood(2 * defaultLimits.globalBurst)
	if !b.underLoad(b.clock()) {
		t.Fatal("b is not under load after the flood's first wave")
	}
	// The link's own budget is a burst of 8 that b's clock never refills: 5 rekeys fit.
	const rekeys = 5
	before := a.Stats().HandshakesCompleted
	for k := range uint64(rekeys) {
		aclk.advance(rekeyAfter)
		for i := 0; a.Stats().HandshakesCompleted < before+k+1 && i < 5000; i++ {
			spoofed.flood(20)
			botnet.flood(20)
			time.Sleep(time.Millisecond)
		}
	}
	s := a.Stats()
	t.Logf("a: %+v", s)
	t.Logf("b: %+v", b.Stats())
	if got := s.HandshakesCompleted - before; got < rekeys {
		t.Fatalf("%d rekeys completed under the flood, want %d", got, rekeys)
	}
	if s.CookieRepliesIn != 0 {
		t.Fatalf("a's rekeys took %d cookie replies: they did not go in on the link's budget", s.CookieRepliesIn)
	}
	if err := l.Send([]byte("after the rekeys")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "after the rekeys" {
		t.Fatalf("got %q", d.msg)
	}
}

// The rekey budget is the link's alone: an initiation that names a live session but comes from
// elsewhere, or that comes by the link's route but carries another key, does not get it.
func TestRekeyBudgetIsTheLinksAlone(t *testing.T) {
	clk := newManualClock()
	b := newTestNode(t, withConfig(func(c *Config) { c.Now = clk.now }))
	a := newTestNode(t)
	dial(t, a, b)
	lb := b.peerLink(t, a.pub)
	idx := lb.current.Load().localIndex
	newSpoofer(b, 2000).flood(2 * defaultLimits.globalBurst)

	var r reader
	// From another address: a cookie reply, not a DH.
	pkt := junkInitiation(b.pub, false)
	putRekeyIndex(pkt, idx, b.pub)
	before := b.Stats()
	b.handlePacket(&r, pkt, netip.MustParseAddrPort("127.9.9.9:9"))
	if s := b.Stats(); s.DropCookie != before.DropCookie+1 {
		t.Fatalf("an initiation naming a's session from elsewhere was not answered with a cookie: %+v", s)
	}
	// From a's address, with another key: in on the budget, but refused after the DH.
	c := newTestNode(t)
	hs, m, err := newInitiatorHandshake(c.local, b.pub, 77, idx, makeTAI64N(time.Now()), freshEphemeral(t))
	if err != nil {
		t.Fatal(err)
	}
	hs.wipe()
	pkt = appendInitiation(nil, &m)
	sealInitiation(pkt, &b.local.macs.mac1, nil)
	before = b.Stats()
	b.handlePacket(&r, pkt, lb.RemoteAddr())
	eventually(t, 5*time.Second, func() bool { return b.Stats().DropRefused == before.DropRefused+1 })
	if s := b.Stats(); s.DropCookie != before.DropCookie || s.HandshakesCompleted != before.HandshakesCompleted {
		t.Fatalf("b: %+v", s)
	}
	if b.Link(c.pub) != nil {
		t.Fatal("c got a link on a's rekey budget")
	}
}

// putRekeyIndex sets an initiation's rekey index and its mac1 for the node whose key is to.
func putRekeyIndex(pkt []byte, idx uint32, to keys.StaticPublic) {
	binary.BigEndian.PutUint32(pkt[8:12], idx)
	k := deriveMACKeys(to)
	sealInitiation(pkt, &k.mac1, nil)
}
