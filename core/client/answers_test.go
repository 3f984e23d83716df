package client_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/relay/relaytest"
	"github.com/meshvpn/meshvpn/crypto/ticket"
)

// planted is the session id a hostile hop tries to make the client take: its own session at the exit.
var planted = ticket.ID{0xba, 0xd}

// TestAHopCannotAnswerForAnother attacks the answers a client waits for (issue 12 item 1): a hostile
// guard or middle, which can seal any relay message under its own layer, answers a BEGIN before the
// exit does (to plant its own exit session on the client) or an EXTEND meant for another hop. The
// client must take answers only from the hop asked, count the violation and tear the circuit down.
func TestAHopCannotAnswerForAnother(t *testing.T) {
	fake := (&cell.Begun{ID: planted}).Encode()
	for _, tc := range []struct {
		name string
		hop  int          // the hostile relay's index (0 the guard, 1 the middle)
		as   cell.MsgType // what it forges
		when cell.MsgType // on seeing which forward message
	}{
		{"guard forges BEGUN as EXTENDED", 0, cell.MsgExtended, cell.MsgBegin},
		{"guard forges BEGUN", 0, cell.MsgBegun, cell.MsgBegin},
		{"middle forges BEGUN", 1, cell.MsgBegun, cell.MsgBegin},
		{"middle forges BEGUN as EXTENDED", 1, cell.MsgExtended, cell.MsgBegin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, netOptions{relays: 3})
			circ := n.build(0, 1, 2)
			var armed, fired atomic.Bool
			relaytest.Hostile(n.relays[tc.hop], func(forward bool, msg []byte, originate func(cell.MsgType, []byte) error) [][]byte {
				if forward && armed.Load() && !fired.Swap(true) {
					// The hop cannot read the BEGIN (it is under the exit's layer); the first
					// forward cell after the client starts waiting is it.
					if err := originate(tc.as, fake); err != nil {
						t.Errorf("originate: %v", err)
					}
				}
				return [][]byte{msg}
			})
			armed.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tk, _, err := circ.Begin(ctx, nil)
			if err == nil && tk.ID == planted {
				t.Fatal("the client took the session a hostile hop planted")
			}
			if !fired.Load() {
				t.Fatal("the hostile hop never got to forge its answer")
			}
			if err == nil {
				t.Fatalf("Begin returned %x: the forged answer was not seen as a violation", tk.ID)
			}
			var ce *cell.Error
			if !errors.As(circ.Err(), &ce) || ce.Reason != cell.ReasonProtocol {
				t.Fatalf("the circuit ended with %v, want a protocol teardown", circ.Err())
			}
			if got := n.client.Stats().ProtocolViolations; got != 1 {
				t.Fatalf("%d protocol violations counted, want 1", got)
			}
		})
	}

	t.Run("an honest path still begins", func(t *testing.T) {
		n := newNet(t, netOptions{relays: 3})
		circ := n.build(0, 1, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tk, kept, err := circ.Begin(ctx, nil)
		if err != nil || kept || tk.ID != exitSession {
			t.Fatalf("Begin: %x %v %v", tk.ID, kept, err)
		}
		if n.client.Stats().ProtocolViolations != 0 {
			t.Fatal("an honest path counted a violation")
		}
	})

	t.Run("the guard answers an EXTEND meant for the middle", func(t *testing.T) {
		n := newNet(t, netOptions{relays: 3})
		var mu sync.Mutex
		seen := map[cell.ID]int{} // forward RELAY cells per circuit that the guard passes on
		relaytest.Hostile(n.relays[0], func(forward bool, msg []byte, originate func(cell.MsgType, []byte) error) [][]byte {
			if !forward {
				return [][]byte{msg}
			}
			// The first RELAY cell a guard passes on (the EXTEND to the guard itself, it acts
			// on) is the EXTEND to the exit, which the middle must answer; the guard answers first,
			// on every attempt.
			id, _ := header(msg)
			mu.Lock()
			seen[id]++
			first := seen[id] == 1
			mu.Unlock()
			if first {
				_ = originate(cell.MsgExtended, make([]byte, 64))
			}
			return [][]byte{msg}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := n.client.Build(ctx, n.path(0, 1, 2))
		var he *client.HopError
		if !errors.As(err, &he) {
			t.Fatalf("build: %v, want a hop error", err)
		}
		if he.Hop != 1 {
			t.Fatalf("the build failed at hop %d (%v); the guard lied, so it must be blamed", he.Hop, he.Err)
		}
		if n.client.Stats().ProtocolViolations == 0 {
			t.Fatal("no violation counted")
		}
	})
}
