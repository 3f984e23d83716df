package link

import (
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/tamper"
)

// An attacker on the wire between two nodes, holding no key, flips bits, duplicates, replays and
// reorders datagrams both ways while messages flow and the link rekeys many times. Everything it
// spoils is a counted drop; the link never goes down.
func TestTampererCausesOnlyCountedDrops(t *testing.T) {
	fast := withConfig(func(c *Config) {
		c.RekeyAfter = 300 * time.Millisecond
		c.HandshakeRetry = 100 * time.Millisecond
		c.KeepaliveInterval = 100 * time.Millisecond
		c.DeadAfter = 2 * time.Second
	})
	a, b := newTestNode(t, fast), newTestNode(t, fast)
	p, err := tamper.Listen(b.LocalAddr(), tamper.Config{Flip: 20, Duplicate: 10, Replay: 10, Reorder: 10, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	la := dialAt(t, a, p.Addr(), b.pub)
	lb := b.peerLink(t, a.pub)
	deadline := time.Now().Add(4 * time.Second)
	sent := 0
	for time.Now().Before(deadline) {
		la.Send([]byte("to b"))
		lb.Send([]byte("to a"))
		sent++
		time.Sleep(500 * time.Microsecond)
	drain:
		for {
			select {
			case <-a.msgs:
			case <-b.msgs:
			default:
				break drain
			}
		}
	}
	select {
	case d := <-a.downs:
		t.Errorf("a's link went down: %v", d.err)
	case d := <-b.downs:
		t.Errorf("b's link went down: %v", d.err)
	default:
	}
	t.Logf("tamperer %+v; sent %d each way", p.Stats(), sent)
	t.Logf("a %+v", a.Stats())
	t.Logf("b %+v", b.Stats())
}
