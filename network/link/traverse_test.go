package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rendezvousTrio makes a rendezvous r, a node b registered with it and a node a that dials b through
// it, all on loopback, and returns a's link to b once it is usable.
func rendezvousTrio(t *testing.T, rcfg RendezvousConfig) (r, a, b *testNode, l *Link) {
	t.Helper()
	r = newTestNode(t, withConfig(func(c *Config) { c.Rendezvous = &rcfg }))
	a, b = newTestNode(t), newTestNode(t)
	rv := Rendezvous{Key: r.pub, Addr: r.LocalAddr()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Register(ctx, rv, []byte("relay b")); err != nil {
		t.Fatalf("register: %v", err)
	}
	got := r.Registered()
	if len(got) != 1 || got[0].Key != b.pub || string(got[0].Tag) != "relay b" || got[0].Addr != b.LocalAddr() {
		t.Fatalf("rendezvous lists %+v, want b with its tag and address", got)
	}
	l, err := a.DialVia(ctx, b.pub, rv)
	if err != nil {
		t.Fatalf("dial via: %v", err)
	}
	return r, a, b, l
}

func TestDialViaRendezvousStartsRelayedAndPunches(t *testing.T) {
	r, a, b, l := rendezvousTrio(t, RendezvousConfig{})
	// The handshake went through the rendezvous (it counts a packet just after passing it on).
	eventually(t, 2*time.Second, func() bool { return r.Stats().RelayForwarded >= 2 })
	if err := l.Send([]byte("through the rendezvous")); err != nil {
		t.Fatal(err)
	}
	if d := b.recv(t); string(d.msg) != "through the rendezvous" || d.link.Peer() != a.pub {
		t.Fatalf("b got %q from %v", d.msg, d.link.Peer())
	}
	// Nothing stands between the nodes on loopback, so the first pings get through.
	eventually(t, 5*time.Second, func() bool {
		bl := b.Link(a.pub)
		return l.Path().Kind == PathPunched && bl != nil && bl.Path().Kind == PathPunched
	})
	if p := l.Path(); p.Via != r.pub || p.RTT <= 0 {
		t.Fatalf("path %+v, want via the rendezvous with a measured round trip", p)
	}
	before := r.Stats().RelayForwarded
	for i := range 20 {
		if err := l.Send([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if d := b.recv(t); !bytes.Equal(d.msg, []byte{byte(i)}) {
			t.Fatalf("message %d: got % x", i, d.msg)
		}
	}
	if after := r.Stats().RelayForwarded; after-before > 2 {
		t.Fatalf("the rendezvous forwarded %d packets after the link was punched", after-before)
	}
	if a.Stats().PathUpgrades != 1 || b.Stats().PathUpgrades != 1 {
		t.Fatalf("upgrades a %d b %d, want 1 each", a.Stats().PathUpgrades, b.Stats().PathUpgrades)
	}
	// A direct link to a public peer has no rendezvous in its path.
	if p := dial(t, a, r).Path(); p.Kind != PathDirect {
		t.Fatalf("link to the rendezvous itself: %v", p.Kind)
	}
}

// A node asked to reach a peer through itself uses the link the peer registered over (a relay that is
// the next hop's rendezvous, extending a circuit to it).
func TestDialViaItselfUsesTheRegistration(t *testing.T) {
	r, _, b, _ := rendezvousTrio(t, RendezvousConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := r.DialVia(ctx, b.pub, Rendezvous{Key: r.pub, Addr: r.LocalAddr()})
	if err != nil || l.Peer() != b.pub || l.Path().Kind != PathDirect {
		t.Fatalf("dial via itself: %v (%v)", l, err)
	}
	if _, err := r.DialVia(ctx, newStatic(t).Public(), Rendezvous{Key: r.pub, Addr: r.LocalAddr()}); err == nil {
		t.Fatal("dialled an unregistered peer through itself")
	}
}

func TestDialViaRefusals(t *testing.T) {
	r := newTestNode(t, withConfig(func(c *Config) { c.Rendezvous = &RendezvousConfig{} }))
	plain := newTestNode(t)
	a, b := newTestNode(t), newTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.DialVia(ctx, b.pub, Rendezvous{Key: r.pub, Addr: r.LocalAddr()})
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("dial via to an unregistered peer: %v", err)
	}
	_, err = a.DialVia(ctx, b.pub, Rendezvous{Key: plain.pub, Addr: plain.LocalAddr()})
	if err == nil || !strings.Contains(err.Error(), "not a rendezvous") {
		t.Fatalf("dial via a node that is no rendezvous: %v", err)
	}
	if _, err := b.Register(ctx, Rendezvous{Key: plain.pub, Addr: plain.LocalAddr()}, nil); err == nil {
		t.Fatal("registered with a node that is no rendezvous")
	}
	if _, err := a.DialVia(ctx, a.pub, Rendezvous{Key: r.pub, Addr: r.LocalAddr()}); err == nil {
		t.Fatal("dialled itself")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	silent := udpLoopback(t) // nobody answers there
	if _, err := a.DialVia(short, b.pub, Rendezvous{Key: newStatic(t).Public(), Addr: addrOf(silent)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial via a silent rendezvous: %v", err)
	}
}

func TestRendezvousLimitsPairs(t *testing.T) {
	r := newTestNode(t, withConfig(func(c *Config) { c.Rendezvous = &RendezvousConfig{MaxPairsPerPeer: 1} }))
	rv := Rendezvous{Key: r.pub, Addr: r.LocalAddr()}
	b := newTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Register(ctx, rv, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := newTestNode(t).DialVia(ctx, b.pub, rv); err != nil {
		t.Fatal(err)
	}
	if _, err := newTestNode(t).DialVia(ctx, b.pub, rv); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("second pair for a peer allowed one: %v", err)
	}
}

// A rendezvous forwards only what comes from the address of the channel's node, within the channel's
// rate; anything else is counted and dropped.
func TestRendezvousForwardingIsGuarded(t *testing.T) {
	r, a, b, l := rendezvousTrio(t, RendezvousConfig{ChannelRate: 100 << 10})
	channel := l.relay.Load().channel
	junk := make([]byte, relayHeaderLen+1000)
	putRelayHeader(junk, channel)
	junk[relayHeaderLen] = typeTransport

	stranger := udpLoopback(t)
	base := r.Stats()
	if _, err := stranger.WriteToUDPAddrPort(junk, r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	unknown := bytes.Clone(junk)
	binary.BigEndian.PutUint32(unknown[4:8], channel+1)
	if err := a.WriteTo(unknown, r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, func() bool { return r.Stats().DropRelay-base.DropRelay == 2 })

	// 100 KiB/s with bursts of 10 KiB: of 200 KB sent at once, about 10 packets pass.
	base = r.Stats()
	bBase := b.Stats()
	for range 200 {
		if err := a.WriteTo(junk, r.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Second, func() bool {
		s := r.Stats()
		return s.RelayForwarded-base.RelayForwarded+s.DropRelayLimited-base.DropRelayLimited >= 200
	})
	passed := r.Stats().RelayForwarded - base.RelayForwarded
	if limited := r.Stats().DropRelayLimited - base.DropRelayLimited; limited < 150 || passed < 5 {
		t.Fatalf("%d passed and %d were limited, want about 10 and 190", passed, limited)
	}
	// What passed reached b, which found no session for it and counted it.
	eventually(t, 2*time.Second, func() bool { return b.Stats().DropUnknownIndex-bBase.DropUnknownIndex >= passed-2 })
}

// An introduction nobody asked for is dropped: a hostile rendezvous cannot make a node keep channels.
func TestUnaskedIntroductionIsDropped(t *testing.T) {
	a, hostile := newTestNode(t), newTestNode(t)
	l := dial(t, a, hostile)
	hl := hostile.peerLink(t, a.pub)
	base := a.Stats().DropRefused
	if err := hl.sendControl(&control{typ: ctlIntro, peer: hostile.pub, addr: hostile.LocalAddr(), channel: 7}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, func() bool { return a.Stats().DropRefused == base+1 })
	if c := a.trav.channel(7, l.RemoteAddr()); c != nil {
		t.Fatal("the unasked introduction was kept")
	}
}

func TestControlEncoding(t *testing.T) {
	var peer [32]byte
	peer[0] = 9
	for _, c := range []control{
		{typ: ctlRegister, tag: []byte("tag")},
		{typ: ctlRegister, tag: []byte{}},
		{typ: ctlRegistered},
		{typ: ctlConnect, peer: peer},
		{typ: ctlIntro, peer: peer, addr: mustAddrPort("198.51.100.7:4000"), channel: 5},
		{typ: ctlIntro, peer: peer, addr: mustAddrPort("[2001:db8::1]:4000"), channel: 5},
		{typ: ctlRefused, what: ctlConnect, peer: peer, reason: refusedFull},
		{typ: ctlPing, stamp: 1 << 40},
		{typ: ctlPong, stamp: 3},
	} {
		b := appendControl(nil, &c)
		got, err := parseControl(b)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if got.typ != c.typ || got.peer != c.peer || got.addr != c.addr || got.channel != c.channel ||
			got.what != c.what || got.reason != c.reason || got.stamp != c.stamp || !bytes.Equal(got.tag, c.tag) {
			t.Fatalf("round trip of %+v gave %+v", c, got)
		}
		if _, err := parseControl(append(b, 0)); err == nil && c.typ != ctlRegister {
			t.Fatalf("%+v with a trailing byte accepted", c)
		}
		if len(b) > 1 {
			if _, err := parseControl(b[:len(b)-1]); err == nil {
				t.Fatalf("%+v cut short accepted", c)
			}
		}
	}
	bad := appendControl(nil, &control{typ: ctlIntro, addr: mustAddrPort("198.51.100.7:4000"), channel: stunMagicCookie})
	if _, err := parseControl(bad); err == nil {
		t.Fatal("intro naming the STUN cookie as its channel accepted")
	}
	if _, err := parseControl([]byte{ctlRegister, MaxTag + 1}); err == nil {
		t.Fatal("over-long tag accepted")
	}
}

func FuzzParseControl(f *testing.F) {
	var peer [32]byte
	f.Add(appendControl(nil, &control{typ: ctlIntro, peer: peer, addr: mustAddrPort("198.51.100.7:4000"), channel: 5}))
	f.Add(appendControl(nil, &control{typ: ctlRegister, tag: []byte("x")}))
	f.Add([]byte{ctlPong, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseControl(b)
		if err != nil {
			return
		}
		if again := appendControl(nil, &c); !bytes.Equal(again, b) {
			t.Fatalf("parsed % x, re-encodes as % x", b, again)
		}
	})
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
