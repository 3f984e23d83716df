package link

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// mac1 covers every bit before it, and mac2 is outside it (a cookie can be added to an initiation
// without touching mac1, which is what a resend after a cookie reply does).
func TestMAC1CoversEveryBit(t *testing.T) {
	p := startHandshake(t)
	init := appendInitiation(nil, &p.init)
	sealInitiation(init, &p.rkey.macs.mac1, nil)
	var c mac1Checker
	if !c.valid(&p.rkey.macs.mac1, init, initiationMAC1At) {
		t.Fatal("a sealed initiation fails its own mac1")
	}
	if other := newLocalKey(newStatic(t)); new(mac1Checker).valid(&other.macs.mac1, init, initiationMAC1At) {
		t.Fatal("mac1 for one responder passes at another")
	}
	for bit := range initiationMAC2At * 8 {
		if c.valid(&p.rkey.macs.mac1, flipBit(init, bit), initiationMAC1At) {
			t.Fatalf("initiation with bit %d flipped passes mac1", bit)
		}
	}
	cookie := [macLen]byte{1, 2, 3}
	putMAC2(init, &cookie)
	if !c.valid(&p.rkey.macs.mac1, init, initiationMAC1At) {
		t.Fatal("adding mac2 broke mac1")
	}

	rhs, err := readInitiation(p.rkey, &p.init)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := rhs.writeResponse(9)
	if err != nil {
		t.Fatal(err)
	}
	resp := appendResponse(nil, &m)
	m1 := mac(p.ikey.macs.mac1[:], resp[:responseMAC1At])
	copy(resp[responseMAC1At:], m1[:])
	for bit := range responseLen * 8 {
		if c2 := new(mac1Checker); c2.valid(&p.ikey.macs.mac1, flipBit(resp, bit), responseMAC1At) {
			t.Fatalf("response with bit %d flipped passes mac1", bit)
		}
	}
	if !new(mac1Checker).valid(&p.ikey.macs.mac1, resp, responseMAC1At) {
		t.Fatal("a sealed response fails its own mac1")
	}
}

// A cookie names one source — address, port and rendezvous channel — under one secret, and the secret
// is replaced every two minutes.
func TestCookieIsBoundToSourceAndSecret(t *testing.T) {
	k := newLocalKey(newStatic(t))
	j := newCookieJar(&k.macs)
	src := route{addr: netip.MustParseAddrPort("192.0.2.1:5000")}
	c := j.cookie(src, 0)
	if c != j.cookie(src, time.Minute) {
		t.Fatal("the cookie changed within the secret's life")
	}
	for _, other := range []route{
		{addr: netip.MustParseAddrPort("192.0.2.2:5000")},
		{addr: netip.MustParseAddrPort("192.0.2.1:5001")},
		{addr: src.addr, channel: 7},
		{addr: netip.MustParseAddrPort("[2001:db8::1]:5000")},
	} {
		if j.cookie(other, time.Minute) == c {
			t.Fatalf("%v has the same cookie as %v", other, src)
		}
	}

	p := startHandshake(t)
	init := appendInitiation(nil, &p.init)
	sealInitiation(init, &k.macs.mac1, &c)
	if !j.validMAC2(init, src, time.Minute) {
		t.Fatal("mac2 with the source's cookie fails")
	}
	if j.validMAC2(init, route{addr: netip.MustParseAddrPort("192.0.2.2:5000")}, time.Minute) {
		t.Fatal("mac2 passes from another source")
	}
	sealInitiation(init, &k.macs.mac1, nil)
	if j.validMAC2(init, src, time.Minute) {
		t.Fatal("an initiation without mac2 passes")
	}
	sealInitiation(init, &k.macs.mac1, &c)
	if j.validMAC2(init, src, cookieSecretLifetime+time.Minute) {
		t.Fatal("a cookie outlived its secret")
	}
	if j.cookie(src, cookieSecretLifetime+time.Minute) == c {
		t.Fatal("the secret was not replaced")
	}
}

// A cookie reply opens only for the initiation it answers (its mac1 is the additional data) and under
// the responder's key: a forged one is refused.
func TestCookieReplyOpensOnlyForItsInitiation(t *testing.T) {
	k := newLocalKey(newStatic(t))
	j := newCookieJar(&k.macs)
	src := route{addr: netip.MustParseAddrPort("192.0.2.1:5000")}
	p, q := startHandshake(t), startHandshake(t)
	init, other := appendInitiation(nil, &p.init), appendInitiation(nil, &q.init)
	sealInitiation(init, &k.macs.mac1, nil)
	sealInitiation(other, &k.macs.mac1, nil)
	m := j.reply(init, src, 0)
	if m.ReceiverIndex != p.init.SenderIndex {
		t.Fatalf("reply to index %d, want %d", m.ReceiverIndex, p.init.SenderIndex)
	}
	c, err := openCookieReply(&k.macs.cookie, &m, init[initiationMAC1At:initiationMAC2At])
	if err != nil || c != j.cookie(src, 0) {
		t.Fatalf("open: %x, %v", c, err)
	}
	if _, err := openCookieReply(&k.macs.cookie, &m, other[initiationMAC1At:initiationMAC2At]); !errors.Is(err, errCookie) {
		t.Fatalf("opened for another initiation: %v", err)
	}
	stranger := newLocalKey(newStatic(t))
	if _, err := openCookieReply(&stranger.macs.cookie, &m, init[initiationMAC1At:initiationMAC2At]); !errors.Is(err, errCookie) {
		t.Fatalf("opened under another responder's key: %v", err)
	}
	wire := appendCookieReply(nil, &m)
	for bit := 8 * 8; bit < len(wire)*8; bit++ {
		fm, err := decodeCookieReply(flipBit(wire, bit))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openCookieReply(&k.macs.cookie, &fm, init[initiationMAC1At:initiationMAC2At]); err == nil {
			t.Fatalf("reply with bit %d flipped opens", bit)
		}
	}
}

// Junk without the responder's key costs it a mac1 check and a counter, and no allocation.
func TestJunkWithoutMAC1CostsNoAllocation(t *testing.T) {
	b := newTestNode(t)
	var r reader
	pkt := junkInitiation(b.pub, false)
	from := netip.MustParseAddrPort("127.1.2.3:4")
	b.handlePacket(&r, pkt, from) // the reader's hash is made on first use
	before := b.Stats().DropMAC1
	allocs := testing.AllocsPerRun(1000, func() { b.handlePacket(&r, pkt, from) })
	if allocs != 0 {
		t.Fatalf("a junk initiation costs %v allocations", allocs)
	}
	if got := b.Stats().DropMAC1 - before; got < 1000 {
		t.Fatalf("%d junk initiations counted, want at least 1000", got)
	}
}

// FuzzCookieReply feeds arbitrary datagrams to a node that awaits a response, as cookie replies from
// the address it sent its initiation to. Nothing may panic, each datagram is counted once, and only
// the genuine reply (the seed the responder's cookie jar made) is taken.
func FuzzCookieReply(f *testing.F) {
	a := newTestNode(f, withConfig(func(c *Config) { c.HandshakeRetry = time.Hour }))
	silent := udpLoopback(f)
	f.Cleanup(func() { silent.Close() })
	bkey := newLocalKey(newStatic(f))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Dial(ctx, addrOf(silent), bkey.pub) })
	f.Cleanup(func() { cancel(); wg.Wait() })
	buf := make([]byte, udp.SlotSize)
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, aAddr, err := silent.ReadFromUDPAddrPort(buf)
	if err != nil || n != initiationLen {
		f.Fatalf("no initiation: %d bytes, %v", n, err)
	}
	init := bytes.Clone(buf[:n])
	m := newCookieJar(&bkey.macs).reply(init, route{addr: aAddr}, 0)
	genuine := appendCookieReply(nil, &m)
	f.Add(genuine)
	f.Add(flipBit(genuine, 100))
	f.Add(genuine[:cookieReplyLen-1])
	f.Add(append(bytes.Clone(genuine), 0))
	f.Add([]byte{typeCookieReply, 0, 0, 0})
	from := addrOf(silent)

	var r reader
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := a.Stats()
		n := copy(buf, pkt)
		a.handlePacket(&r, buf[:n], from)
		s := a.Stats()
		if s.PacketsIn != before.PacketsIn+1 {
			t.Fatalf("packet counted %d times", s.PacketsIn-before.PacketsIn)
		}
		if s.CookieRepliesIn != before.CookieRepliesIn && !bytes.Equal(pkt, genuine) {
			t.Fatalf("a forged cookie reply was taken: % x", pkt)
		}
	})
}
