package client_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// stream sends total datagrams of random sizes through send, keeping at most window of them
// undelivered (as a transport's congestion window would), and waits for the last to arrive.
func stream(t *testing.T, total, maxData int, send func([]byte) error, delivered func() int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	const window = 64
	for i := range total {
		deadline := time.Now().Add(5 * time.Second)
		for i-delivered() > window && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		if err := send(datagram(uint32(i), 4+r.IntN(maxData-3))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for delivered() < total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func checkDelivered(t *testing.T, what string, got map[uint32][]byte, total int) {
	t.Helper()
	for seq, b := range got {
		if want := datagram(seq, len(b)); !bytes.Equal(b, want) {
			t.Fatalf("%s: datagram %d corrupted", what, seq)
		}
	}
	if len(got)*1000 < total*999 {
		t.Fatalf("%s: %d of %d datagrams delivered, want at least 99.9%%", what, len(got), total)
	}
	t.Logf("%s: %d of %d delivered", what, len(got), total)
}

func TestTenThousandDatagramsEachWay(t *testing.T) {
	n := newNet(t, netOptions{})
	circ := n.build(0, 1, 2)
	const total = 10_000
	stream(t, total, circ.MaxData(), circ.Send, func() int { e, _ := n.counts(); return e })
	ec := n.exitCircuit()
	if ec == nil {
		t.Fatal("no circuit reached an exit")
	}
	if ec.MaxData() != circ.MaxData() {
		t.Fatalf("exit carries %d bytes, client %d", ec.MaxData(), circ.MaxData())
	}
	stream(t, total, ec.MaxData(), ec.Send, func() int { _, c := n.counts(); return c })

	for i, r := range n.relays[:3] {
		t.Logf("relay %d: %+v", i, r.Stats())
	}
	t.Logf("client: %+v", n.client.Stats())
	n.mu.Lock()
	defer n.mu.Unlock()
	checkDelivered(t, "client to exit", n.atExit, total)
	checkDelivered(t, "exit to client", n.atClient, total)
	if n.dupExit+n.dupCli != 0 {
		t.Fatalf("%d duplicates at the exit, %d at the client", n.dupExit, n.dupCli)
	}
	// Only the last hop reads the data: the guard and middle saw none of it as their own.
	for i, r := range n.relays[:2] {
		if s := r.Stats(); s.ExitData != 0 || s.DropBadMAC != 0 {
			t.Fatalf("relay %d: %+v", i, s)
		}
	}
}

// hostileTest runs traffic through a circuit whose middle relay applies hook to every cell it sends.
func hostileTest(t *testing.T, hook func(forward bool, msg []byte) [][]byte, cells int) (*testNet, *client.Circuit) {
	t.Helper()
	n := newNet(t, netOptions{relays: 3, hostile: map[int]func(bool, []byte) [][]byte{1: hook}})
	circ := n.build(0, 1, 2)
	for i := range cells {
		if err := circ.Send(datagram(uint32(i), 100)); err != nil {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	return n, circ
}

func header(msg []byte) (cell.ID, cell.Command) {
	h, _, _ := cell.Parse(msg, []int{len(msg) - cell.HeaderLen})
	return h.Circuit, h.Command
}

func TestHostileMiddle(t *testing.T) {
	t.Run("flipped bit forward tears the circuit down", func(t *testing.T) {
		var mu sync.Mutex
		count := 0
		n, circ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			mu.Lock()
			defer mu.Unlock()
			if !forward {
				return [][]byte{msg}
			}
			if count++; count == 5 {
				msg[cell.HeaderLen+17] ^= 0x10
			}
			return [][]byte{msg}
		}, 20)
		waitFor(t, 3*time.Second, "the circuit to be torn down", func() bool {
			select {
			case <-circ.Done():
				return true
			default:
				return false
			}
		})
		// The exit tore it down for auth; the reason stops at the middle, which passes the teardown on
		// as ReasonDestroyed (a DESTROY's reason does not cross an honest relay).
		var ce *cell.Error
		if !errors.As(circ.Err(), &ce) || ce.Reason != cell.ReasonDestroyed || !ce.Remote {
			t.Fatalf("circuit ended with %v, want a remote teardown passed on as %v", circ.Err(), cell.ReasonDestroyed)
		}
		if got := n.relays[2].Stats().DropBadMAC; got != 1 {
			t.Fatalf("exit counted %d bad MACs, want 1", got)
		}
		if e, _ := n.counts(); e != 4 {
			t.Fatalf("exit delivered %d datagrams, want the 4 before the flip", e)
		}
	})

	t.Run("flipped bit backward is caught by the client", func(t *testing.T) {
		var armed atomic.Bool // only after the circuit is built: EXTENDED passes the middle too
		n, circ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			if !forward && armed.Load() {
				msg[cell.HeaderLen+10] ^= 1
			}
			return [][]byte{msg}
		}, 1)
		armed.Store(true)
		waitFor(t, 2*time.Second, "the exit to see the datagram", func() bool { e, _ := n.counts(); return e == 1 })
		if err := n.exitCircuit().Send(datagram(1, 50)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "the client to tear down", func() bool { return circ.Err() != nil })
		if n.client.Stats().DropBadMAC != 1 {
			t.Fatalf("client stats %+v", n.client.Stats())
		}
		if _, c := n.counts(); c != 0 {
			t.Fatal("the client delivered a tampered datagram")
		}
	})

	t.Run("replayed cells are dropped and counted", func(t *testing.T) {
		n, _ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			return [][]byte{msg, msg}
		}, 50)
		waitFor(t, 3*time.Second, "50 datagrams", func() bool { e, _ := n.counts(); return e == 50 })
		waitFor(t, 2*time.Second, "50 replays counted", func() bool { return n.relays[2].Stats().DropReplay >= 50 })
		if n.dupExit != 0 {
			t.Fatalf("%d duplicates delivered", n.dupExit)
		}
	})

	t.Run("reordered cells are still delivered", func(t *testing.T) {
		var held []byte
		n, _ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			id, cmd := header(msg)
			if !forward || cmd != cell.Relay || id == 0 {
				return [][]byte{msg}
			}
			if held == nil {
				held = append([]byte(nil), msg...)
				return nil
			}
			out := [][]byte{msg, held}
			held = nil
			return out
		}, 50)
		waitFor(t, 3*time.Second, "50 datagrams", func() bool { e, _ := n.counts(); return e >= 49 })
		if s := n.relays[2].Stats(); s.DropReplay+s.DropBadMAC != 0 {
			t.Fatalf("reordering caused drops: %+v", s)
		}
	})

	t.Run("cells injected on a foreign circuit are counted", func(t *testing.T) {
		n, _ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			forged := append([]byte(nil), msg...)
			forged[0] ^= 0x5a
			return [][]byte{msg, forged}
		}, 20)
		waitFor(t, 3*time.Second, "20 datagrams", func() bool { e, _ := n.counts(); return e == 20 })
		if n.relays[2].Stats().DropUnknownCircuit == 0 {
			t.Fatalf("exit stats %+v", n.relays[2].Stats())
		}
	})

	t.Run("garbage is counted as malformed", func(t *testing.T) {
		n, _ := hostileTest(t, func(forward bool, msg []byte) [][]byte {
			junk := make([]byte, 1+mrand(600))
			crand.Read(junk)
			return [][]byte{msg, junk}
		}, 20)
		waitFor(t, 3*time.Second, "20 datagrams", func() bool { e, _ := n.counts(); return e == 20 })
		if n.relays[2].Stats().DropMalformed == 0 {
			t.Fatalf("exit stats %+v", n.relays[2].Stats())
		}
	})
}

func mrand(n int) int { return rand.IntN(n) }

// TestKilledMiddleIsNoticed kills the middle relay's socket mid-stream: the guard's link to it dies,
// and the client hears of it within the dead-peer bound.
func TestKilledMiddleIsNoticed(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	circ := n.build(0, 1, 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = circ.Send(datagram(uint32(i), 500))
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	n.conns[1].Close() // the middle's process "dies": no DESTROY, no link close
	select {
	case <-circ.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not notice the dead middle relay within 5 s")
	}
	close(stop)
	wg.Wait()
	took := time.Since(killed)
	var ce *cell.Error
	if !errors.As(circ.Err(), &ce) || ce.Reason != cell.ReasonLinkDown {
		t.Fatalf("circuit ended with %v", circ.Err())
	}
	// DeadAfter is 1 s and keepalives run every 200 ms: the guard must give up well within 2.5 s.
	if took > 2500*time.Millisecond {
		t.Fatalf("noticed after %v", took)
	}
	t.Logf("dead middle noticed after %v", took)
}

func TestCloseDestroysEverywhere(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	circ := n.build(0, 1, 2)
	for i, r := range n.relays {
		if r.Stats().CircuitsOpen != 1 {
			t.Fatalf("relay %d has %d circuits", i, r.Stats().CircuitsOpen)
		}
	}
	circ.Close()
	waitFor(t, 2*time.Second, "every relay to drop the circuit", func() bool {
		for _, r := range n.relays {
			if r.Stats().CircuitsOpen != 0 {
				return false
			}
		}
		return true
	})
	if err := circ.Send([]byte("late")); err == nil {
		t.Fatal("send on a closed circuit succeeded")
	}
}

func TestExtendToUnreachableRelayFails(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	gone := n.relays[2].Info()
	n.conns[2].Close()
	ctx := t.Context()
	start := time.Now()
	_, err := n.client.Build(ctx, []netdir.Relay{n.relays[0].Info(), n.relays[1].Info(), gone})
	if err == nil {
		t.Fatal("built a circuit through a dead relay")
	}
	t.Logf("failed after %v: %v", time.Since(start), err)
	waitFor(t, 3*time.Second, "the partial circuits to go", func() bool {
		return n.relays[0].Stats().CircuitsOpen == 0 && n.relays[1].Stats().CircuitsOpen == 0
	})
}

// deadRendezvous returns a rendezvous that nothing answers at: a closed socket's address and a fresh key.
func deadRendezvous(t *testing.T) []descriptor.Rendezvous {
	c := udp(t)
	addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	k, err := keys.GenerateStatic(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []descriptor.Rendezvous{{LinkKey: k.Public(), Addr: addr}}
}

// A guard behind a NAT is dialled through its rendezvous, not at its address: with a rendezvous that
// does not answer, a guard that does answer at its address carries no circuit.
func TestGuardIsDialledThroughItsRendezvous(t *testing.T) {
	n := newNet(t, netOptions{relays: 1})
	guard := n.relays[0].Info()
	guard.Rendezvous = deadRendezvous(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := n.client.Build(ctx, []netdir.Relay{guard})
	if err == nil {
		t.Fatal("built a circuit through a rendezvous that does not answer: the link went to the address")
	}
	if want := "through rendezvous " + guard.Rendezvous[0].Addr.String(); !strings.Contains(err.Error(), want) {
		t.Fatalf("error does not say %q: %v", want, err)
	}
	if s := n.relays[0].Stats(); s.CircuitsCreated != 0 {
		t.Fatalf("the guard created %d circuits", s.CircuitsCreated)
	}
	guard.Rendezvous = nil
	circ, err := n.client.Build(t.Context(), []netdir.Relay{guard})
	if err != nil {
		t.Fatalf("without its rendezvous: %v", err)
	}
	circ.Close()
}

// A relay behind a NAT is reached through the rendezvous the EXTEND names: the hop before it dials the
// rendezvous, which does not answer, and never the relay's own address, which would.
func TestExtendGoesThroughTheRendezvous(t *testing.T) {
	n := newNet(t, netOptions{relays: 2})
	middle := n.relays[1].Info()
	middle.Rendezvous = deadRendezvous(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := n.client.Build(ctx, []netdir.Relay{n.relays[0].Info(), middle})
	var ce *cell.Error
	if !errors.As(err, &ce) || (ce.Reason != cell.ReasonUnreachable && ce.Reason != cell.ReasonTimeout) {
		t.Fatalf("extend through a rendezvous that does not answer: %v", err)
	}
	if s := n.relays[0].Stats(); s.Extends == 0 || s.DropMalformed != 0 {
		t.Fatalf("the guard did not take the EXTEND: %+v", s)
	}
	if s := n.relays[1].Stats(); s.CircuitsCreated != 0 {
		t.Fatalf("the relay behind the rendezvous was dialled at its address: %d circuits", s.CircuitsCreated)
	}
	middle.Rendezvous = nil
	circ, err := n.client.Build(t.Context(), []netdir.Relay{n.relays[0].Info(), middle})
	if err != nil {
		t.Fatalf("without its rendezvous: %v", err)
	}
	circ.Close()
}

func TestIdleCircuitIsDestroyed(t *testing.T) {
	n := newNet(t, netOptions{relays: 3, idle: 300 * time.Millisecond})
	circ := n.build(0, 1, 2)
	start := time.Now()
	select {
	case <-circ.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("an idle circuit outlived its timeout by seconds")
	}
	// Every hop times out; the client reads idle if its guard's timer fired first, and destroyed (a
	// later hop's teardown, passed on without its reason) otherwise.
	var ce *cell.Error
	if !errors.As(circ.Err(), &ce) || (ce.Reason != cell.ReasonIdle && ce.Reason != cell.ReasonDestroyed) {
		t.Fatalf("circuit ended with %v", circ.Err())
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("destroyed after %v, before the idle timeout", took)
	}
}

func TestSendBatchDeliversEveryDatagram(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	circ := n.build(0, 1, 2)
	const total, per = 1000, 50
	for i := 0; i < total; i += per {
		var batch [][]byte
		for j := range per {
			batch = append(batch, datagram(uint32(i+j), 100+(i+j)%1200))
		}
		if sent, err := circ.SendBatch(batch); err != nil || sent != per {
			t.Fatalf("batch at %d: sent %d, %v", i, sent, err)
		}
		waitFor(t, 3*time.Second, "the batch", func() bool { e, _ := n.counts(); return e >= i+per-1 })
	}
	waitFor(t, 3*time.Second, "every datagram", func() bool { e, _ := n.counts(); return e == total })
	n.mu.Lock()
	defer n.mu.Unlock()
	checkDelivered(t, "batched", n.atExit, total)
	if _, err := circ.SendBatch([][]byte{make([]byte, circ.MaxData()+1)}); err == nil {
		t.Fatal("an oversized datagram in a batch was accepted")
	}
}
