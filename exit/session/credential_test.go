package session

import (
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/ticket"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/tun"
)

// victim is a client whose session has moved once: opened on c1 with ticket first, re-attached on c2,
// which carries its traffic (so the exit has retired the first credential).
type victim struct {
	e      *Engine
	dev    *tun.Channel
	c1, c2 *fakeCircuit
	first  ticket.Ticket
	now    ticket.Ticket
	pool   nat.Header
	// seen is what a thief could hold at best: the plaintext of the owner's BEGIN on c2 (no hop sees
	// it — it travels inside the exit's layer — but a proof must be worthless even so).
	seen cell.Begin
}

func newVictim(t *testing.T) *victim {
	t.Helper()
	e, dev := newEngine(t, time.Minute)
	v := &victim{e: e, dev: dev, c1: newCircuit(1), c2: newCircuit(2)}
	v.first = begin(t, e, v.c1)
	e.Handle(v.c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("one")))
	v.pool = fromTUN(t, dev)
	v.seen = reattachReq(v.first, v.c2)
	var kept bool
	if v.now, kept = reattach(t, e, v.c2, v.first); !kept {
		t.Fatal("the owner's re-attach was refused")
	}
	e.Handle(v.c2, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("two")))
	fromTUN(t, dev)
	return v
}

// repliesGoTo checks that the session's replies go to circuit c.
func (v *victim) repliesGoTo(t *testing.T, c *fakeCircuit) {
	t.Helper()
	v.dev.Inbound <- udp4(server, v.pool.Src, 443, 5000, []byte("reply"))
	m := c.next(t)
	if h, err := nat.ParseIPv4(m.data); err != nil || m.t != cell.MsgData || h.Dst != clientAddr {
		t.Fatalf("the session's reply: %v %+v %v", m.t, h, err)
	}
}

// TestNobodyElseCanTakeASession attacks the re-attach credential as issue 12 item 2 lists: a thief
// with the session's old credential, a replay of the owner's re-attach on another circuit, and a hop
// that saw both of the owner's circuits. Every attempt gets a new session of its own, is counted, and
// leaves the victim's session where it was.
func TestNobodyElseCanTakeASession(t *testing.T) {
	t.Run("a thief with the old credential", func(t *testing.T) {
		v := newVictim(t)
		thief := newCircuit(99)
		if got := ask(t, v.e, thief, reattachReq(v.first, thief)); got.Kept || got.ID == v.first.ID {
			t.Fatal("a used credential re-attached the victim's session")
		}
		if s := v.e.Stats(); s.ReattachRefused != 1 || s.Opened != 2 {
			t.Fatalf("%+v", s)
		}
		v.repliesGoTo(t, v.c2)
	})

	t.Run("a replayed re-attach on another circuit", func(t *testing.T) {
		v := newVictim(t)
		thief := newCircuit(99)
		if got := ask(t, v.e, thief, v.seen); got.Kept {
			t.Fatal("the owner's re-attach, replayed on another circuit, took the session")
		}
		if s := v.e.Stats(); s.ReattachRefused != 1 || s.Reattached != 1 {
			t.Fatalf("%+v", s)
		}
		v.repliesGoTo(t, v.c2)
	})

	t.Run("a hop that saw both circuits", func(t *testing.T) {
		v := newVictim(t)
		// The hop was on c1 and c2 and has circuits of its own to the exit: it replays what it
		// could have seen, and guesses the next credential from the one it might have stolen.
		tries := 0
		for _, c := range []*fakeCircuit{newCircuit(99), newCircuit(100)} {
			guesses := []cell.Begin{v.seen, reattachReq(v.first, v.c1), reattachReq(v.first, v.c2),
				reattachReq(v.first, c), reattachReq(ticket.Ticket{ID: v.first.ID, Key: ticket.Next(v.first.Key, v.c1.binding)}, c)}
			for _, req := range guesses {
				tries++
				if got := ask(t, v.e, c, req); got.Kept {
					t.Fatal("a hop took the session with what it saw")
				}
			}
		}
		if s := v.e.Stats(); s.ReattachRefused != uint64(tries) {
			t.Fatalf("%+v", s)
		}
		v.repliesGoTo(t, v.c2)
	})

	t.Run("the owner still can", func(t *testing.T) {
		v := newVictim(t)
		close(v.c2.done)
		c3 := newCircuit(3)
		if _, kept := reattach(t, v.e, c3, v.now); !kept {
			t.Fatal("the owner's current ticket was refused")
		}
		v.repliesGoTo(t, c3)
	})
}

// TestReattachSurvivesALostBegun: a re-attach whose BEGUN never reached the client (the new circuit died
// first) must not cost the session: the client, still holding the credential it used, tries again on
// the next circuit. And a client that did get the BEGUN, but sent nothing before that circuit died too,
// holds the next credential, which must work as well.
func TestReattachSurvivesALostBegun(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c1 := newCircuit(1)
	tk := begin(t, e, c1)
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("one")))
	pool := fromTUN(t, dev).Src
	close(c1.done)

	c2 := newCircuit(2)
	ask(t, e, c2, reattachReq(tk, c2)) // the BEGUN is lost: the client keeps tk
	close(c2.done)
	c3 := newCircuit(3)
	next, kept := reattach(t, e, c3, tk)
	if !kept {
		t.Fatal("a retry after a lost BEGUN lost the session")
	}
	close(c3.done) // the client has next, but sent nothing on c3
	c4 := newCircuit(4)
	if _, kept := reattach(t, e, c4, next); !kept {
		t.Fatal("the credential from a BEGUN that carried no traffic was refused")
	}
	// Having shown next, the client's older credential is spent.
	if got := ask(t, e, newCircuit(5), reattachReq(tk, newCircuit(5))); got.Kept {
		t.Fatal("a credential older than the one just shown still worked")
	}
	e.Handle(c4, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("four")))
	if got := fromTUN(t, dev).Src; got != pool {
		t.Fatalf("the session's address changed: %v then %v", pool, got)
	}
}

// TestReattachWhileTheOldCircuitLives is make-before-break: the owner moves its session to a new circuit
// while the old one still runs. Replies go to the new circuit at once; what was in flight on the old one
// still reaches the internet until it closes; then the old circuit sends for nobody.
func TestReattachWhileTheOldCircuitLives(t *testing.T) {
	e, dev := newEngine(t, time.Minute)
	c1 := newCircuit(1)
	tk := begin(t, e, c1)
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("one")))
	pool := fromTUN(t, dev).Src
	c2 := newCircuit(2)
	if _, kept := reattach(t, e, c2, tk); !kept {
		t.Fatal("the owner's make-before-break re-attach was refused")
	}
	dev.Inbound <- udp4(server, pool, 443, 5000, []byte("reply"))
	if m := c2.next(t); m.t != cell.MsgData {
		t.Fatalf("got %v on the new circuit", m.t)
	}
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("in flight")))
	if got := fromTUN(t, dev).Src; got != pool {
		t.Fatalf("a packet in flight on the old circuit left as %v", got)
	}
	// A second replacement whose circuit dies before it carried anything: replies fall back to the
	// latest circuit that still lives.
	c3 := newCircuit(3)
	if _, kept := reattach(t, e, c3, tk); !kept { // the client never saw c2's BEGUN
		t.Fatal("a retried replacement was refused")
	}
	close(c3.done)
	waitFor(t, func() bool { e.mu.RLock(); defer e.mu.RUnlock(); return len(e.byCirc) == 2 })
	dev.Inbound <- udp4(server, pool, 443, 5000, []byte("reply"))
	if m := c2.next(t); m.t != cell.MsgData {
		t.Fatalf("got %v on the circuit the session moved to before", m.t)
	}
	close(c1.done)
	waitFor(t, func() bool { e.mu.RLock(); defer e.mu.RUnlock(); return len(e.byCirc) == 1 })
	e.Handle(c1, cell.MsgData, udp4(clientAddr, server, 5000, 443, []byte("late")))
	if s := e.Stats(); s.DropNoSession != 1 || s.Sessions != 1 {
		t.Fatalf("%+v", s)
	}
	select {
	case m := <-c1.msgs:
		t.Fatalf("the old circuit got %v after the move", m.t)
	default:
	}
}
