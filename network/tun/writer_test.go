package tun

import (
	"bytes"
	"testing"
	"time"
)

func TestWriterDeliversInOrderAndBatches(t *testing.T) {
	ch := NewChannel(1500)
	defer ch.Close()
	w := NewWriter(ch)
	defer w.Close()
	for i := range 100 {
		if err := w.Write(bytes.Repeat([]byte{byte(i)}, 20+i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		select {
		case p := <-ch.Outbound:
			if len(p) != 20+i || p[0] != byte(i) {
				t.Fatalf("packet %d: %d bytes starting %d", i, len(p), p[0])
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("packet %d never written", i)
		}
	}
	if q, f := w.Dropped(); q != 0 || f != 0 {
		t.Fatalf("dropped %d, failed %d", q, f)
	}
}

// blockedWriter never finishes a write until released, like a TUN whose reader stalled.
type blockedWriter struct{ release chan struct{} }

func (b *blockedWriter) Write(bufs [][]byte, offset int) (int, error) {
	<-b.release
	return len(bufs), nil
}

func TestWriterDropsWhenTheDeviceIsBehind(t *testing.T) {
	dev := &blockedWriter{release: make(chan struct{})}
	w := NewWriter(dev)
	refused, sent := 0, 3*writerQueue
	for range sent {
		if err := w.Write([]byte{0x45}); err != nil {
			refused++
		}
	}
	close(dev.release)
	w.Close()
	if q, _ := w.Dropped(); refused == 0 || q != uint64(refused) {
		t.Fatalf("refused %d, counted %d: a stalled device must cost drops, not memory", refused, q)
	}
	if refused > sent-writerQueue {
		t.Fatalf("refused %d of %d: the queue held fewer than %d", refused, sent, writerQueue)
	}
}
