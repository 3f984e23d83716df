package link

import (
	"bytes"
	"errors"
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

func TestSendBatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	a := newTestNode(t)
	b := newTestNode(t, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
	l := dial(t, a, b)
	msgs := make([][]byte, MaxBatch)
	for i := range msgs {
		msgs[i] = make([]byte, 1413)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := l.SendBatch(msgs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("SendBatch allocates %v times per batch", allocs)
	}
}
