package link

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestSendBatchDeliversEveryMessage(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	l := dial(t, a, b)
	b.peerLink(t, a.pub)
	var msgs [][]byte
	for i := range 70 { // more than two batches
		m := bytes.Repeat([]byte{byte(i)}, 1+i*20)
		msgs = append(msgs, m)
	}
	n, err := l.SendBatch(msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("sent %d of %d: %v", n, len(msgs), err)
	}
	got := map[byte][]byte{}
	for range msgs {
		d := b.recv(t)
		got[d.msg[0]] = d.msg
	}
	for i, m := range msgs {
		if !bytes.Equal(got[byte(i)], m) {
			t.Fatalf("message %d arrived as %d bytes, want %d", i, len(got[byte(i)]), len(m))
		}
	}
	if s := a.Stats(); s.MessagesOut < uint64(len(msgs)) || s.PacketsOut < uint64(len(msgs)) {
		t.Fatalf("stats %+v", s)
	}
	if _, err := l.SendBatch([][]byte{make([]byte, MaxMessage+1)}); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("oversized message in a batch: %v", err)
	}
}

// SendBatch allocates nothing, with UDP GSO (where the kernel has it) and without.
func TestSendBatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			a := newTestNode(t, withOffload(gso, false))
			b := newTestNode(t, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
			l := dial(t, a, b)
			msgs := make([][]byte, MaxBatch)
			for i := range msgs {
				msgs[i] = make([]byte, []int{benchSize, benchSize, 300}[i%3]) // runs of 3 datagrams
			}
			w0 := a.Stats().WriteMsgs
			const runs = 200
			allocs := testing.AllocsPerRun(runs, func() {
				if _, err := l.SendBatch(msgs); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("SendBatch allocates %v times per batch", allocs)
			}
			per := float64(a.Stats().WriteMsgs-w0) / (runs + 1) // AllocsPerRun adds a warm-up run
			// A keepalive confirming the session may be counted too: hence the rounding.
			if a.sock.GSO() && per > MaxBatch/2 || !gso && math.Round(per) != MaxBatch {
				t.Fatalf("%.1f datagrams per batch of %d: GSO %v not in effect", per, MaxBatch, gso)
			}
		})
	}
}
