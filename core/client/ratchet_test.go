package client_test

import (
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/relay"
)

// testRatchet is the layer-key ratchet's period in these tests: long enough that a cell delayed by a
// busy machine stays within the window (half of it), short enough for several ratchets in seconds.
const testRatchet = 600 * time.Millisecond

// A steady light flow keeps its circuit across several scheduled ratchets (design: keys replaced after
// 1 hour or 1 GB; before the ratchet a light flow kept its first keys for the circuit's whole life):
// every datagram arrives both ways, no cell is refused at a switch, and the keys moved on and the old
// ones were erased on both sides of every hop.
func TestScheduledRatchetKeepsTheFlow(t *testing.T) {
	n := newNet(t, netOptions{relays: 3, ratchet: testRatchet})
	circ := n.build(0, 1, 2)
	moved := func() bool {
		c := n.client.Stats()
		if c.KeyRatchets < 3 || c.KeysErased < 3*2 { // every hop's backward key, at least twice
			return false
		}
		for _, r := range n.relays {
			if s := r.Stats(); s.KeyRatchets < 3 || s.KeysErased < 2 {
				return false
			}
		}
		return true
	}
	sent := 0
	deadline := time.Now().Add(60 * time.Second)
	for !moved() {
		if time.Now().After(deadline) {
			t.Fatalf("no ratchets after %d datagrams: client %+v", sent, n.client.Stats())
		}
		if err := circ.Send(datagram(uint32(sent), 200)); err != nil {
			t.Fatal(err)
		}
		if ec := n.exitCircuit(); ec != nil {
			if err := ec.Send(datagram(uint32(sent), 200)); err != nil {
				t.Fatal(err)
			}
		}
		sent++
		time.Sleep(5 * time.Millisecond)
	}
	// The exit learns of the circuit with the first datagram, so it sends back from the second on.
	waitFor(t, 10*time.Second, "every datagram", func() bool { e, c := n.counts(); return e == sent && c >= sent-1 })
	toExit, toClient := n.counts()
	n.mu.Lock()
	dups := n.dupExit + n.dupCli
	n.mu.Unlock()
	cs := n.client.Stats()
	t.Logf("%d datagrams each way across the ratchets; client %+v", sent, cs)
	if toExit != sent || toClient < sent-1 || dups != 0 {
		t.Fatalf("sent %d: %d reached the exit, %d the client, %d duplicates", sent, toExit, toClient, dups)
	}
	if cs.DropBadMAC+cs.DropReplay+cs.DropOther != 0 {
		t.Fatalf("the client refused cells at a switch: %+v", cs)
	}
	for i, r := range n.relays {
		s := r.Stats()
		t.Logf("relay %d: ratchets %d, erased %d", i, s.KeyRatchets, s.KeysErased)
		if s.DropBadMAC+s.DropReplay+s.DropMalformed != 0 || s.CircuitsDestroyed != 0 {
			t.Fatalf("relay %d refused cells at a switch: %+v", i, s)
		}
	}
	select {
	case <-circ.Done():
		t.Fatalf("the circuit went down: %v", circ.Err())
	default:
	}
}

// A circuit that goes idle after a ratchet does not keep the keys of its last cells: the sender's nudge
// takes every receiver to the new keys, and they erase the old ones a window later, though nothing
// else is sent. And an idle circuit settles: a nudge carries nothing, so it is no reason for another
// ratchet, and the relays stop moving its keys.
func TestScheduledRatchetErasesKeysOfAnIdleCircuit(t *testing.T) {
	n := newNet(t, netOptions{relays: 3, ratchet: testRatchet})
	circ := n.build(0, 1, 2)
	if err := circ.Send(datagram(1, 100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the datagram at the exit", func() bool { e, _ := n.counts(); return e == 1 })
	if err := n.exitCircuit().Send(datagram(2, 100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the datagram at the client", func() bool { _, c := n.counts(); return c == 1 })

	// Nothing more is sent; every receiver still moves on and erases what opened those two datagrams.
	waitFor(t, 30*time.Second, "the old keys erased on an idle circuit", func() bool {
		if n.client.Stats().KeysErased < 3 {
			return false
		}
		for _, r := range n.relays {
			if r.Stats().KeysErased < 1 {
				return false
			}
		}
		return true
	})

	// A hop ratchets once more for each nudge from beyond it that it passed on (crypto/onion): at most
	// 1, 2 and 4 times from the exit to the guard. Then nothing moves.
	settled := func() (c uint64, rs [3]relay.Stats) {
		for i, r := range n.relays {
			rs[i] = r.Stats()
		}
		return n.client.Stats().KeyRatchets, rs
	}
	time.Sleep(8 * testRatchet)
	c0, r0 := settled()
	time.Sleep(3 * testRatchet)
	c1, r1 := settled()
	if c0 != 1 || c1 != c0 {
		t.Fatalf("the client ratcheted an idle circuit %d times, then %d", c0, c1)
	}
	for i := range r0 {
		if r1[i].KeyRatchets != r0[i].KeyRatchets || r0[i].KeyRatchets > 1<<(2-i) {
			t.Fatalf("relay %d ratcheted an idle circuit %d times, then %d", i, r0[i].KeyRatchets, r1[i].KeyRatchets)
		}
	}
	select {
	case <-circ.Done():
		t.Fatalf("the circuit went down: %v", circ.Err())
	default:
	}
}
