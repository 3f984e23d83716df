package tun

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, Offset+size)
	}
	return bufs, make([]int, n)
}

func TestChannelRoundTrip(t *testing.T) {
	c := NewChannel(1400)
	defer c.Close()
	var dev Device = c
	if dev.MTU() != 1400 || dev.BatchSize() != ChannelBatchSize || dev.Name() == "" {
		t.Fatalf("MTU %d BatchSize %d Name %q", dev.MTU(), dev.BatchSize(), dev.Name())
	}

	in := [][]byte{[]byte("first"), []byte("second"), bytes.Repeat([]byte{7}, 1400)}
	for _, p := range in {
		c.Inbound <- p
	}
	bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
	n, err := dev.Read(bufs, sizes, Offset)
	if err != nil || n != len(in) {
		t.Fatalf("Read = %d, %v; want %d queued packets in one batch", n, err, len(in))
	}
	for i, p := range in {
		if got := bufs[i][Offset : Offset+sizes[i]]; !bytes.Equal(got, p) {
			t.Errorf("packet %d = %q, want %q", i, got, p)
		}
	}

	// A batch smaller than the queue takes only what fits; the rest waits for the next Read.
	c.Inbound <- []byte("a")
	c.Inbound <- []byte("b")
	if n, err := dev.Read(bufs[:1], sizes, Offset); n != 1 || err != nil || string(bufs[0][Offset:Offset+sizes[0]]) != "a" {
		t.Fatalf("Read(1 buffer) = %d, %v", n, err)
	}
	if n, err := dev.Read(bufs, sizes, Offset); n != 1 || err != nil || string(bufs[0][Offset:Offset+sizes[0]]) != "b" {
		t.Fatalf("second Read = %d, %v", n, err)
	}

	out := [][]byte{append(make([]byte, Offset), "one"...), append(make([]byte, Offset), "two"...)}
	if n, err := dev.Write(out, Offset); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	copy(out[0][Offset:], "XXX") // the caller reuses its buffers at once
	for _, want := range []string{"one", "two"} {
		if got := <-c.Outbound; string(got) != want {
			t.Errorf("Outbound = %q, want %q", got, want)
		}
	}
}

func TestChannelRefusesOversizedPacket(t *testing.T) {
	c := NewChannel(100)
	defer c.Close()
	c.Inbound <- make([]byte, 101)
	bufs, sizes := newBufs(1, 100)
	if n, err := c.Read(bufs, sizes, Offset); n != 0 || err == nil {
		t.Fatalf("Read(oversized) = %d, %v; want an error", n, err)
	}
	if _, err := c.Read(bufs, sizes[:0], Offset); err == nil {
		t.Fatal("Read with too few sizes succeeded")
	}
}

func TestChannelCloseUnblocks(t *testing.T) {
	c := NewChannel(1400)
	readErr := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(1, 1400)
		_, err := c.Read(bufs, sizes, Offset)
		readErr <- err
	}()
	// Fill Outbound so that the next Write blocks.
	full := make([][]byte, channelQueue+1)
	for i := range full {
		full[i] = make([]byte, Offset+1)
	}
	writeRes := make(chan int, 1)
	go func() {
		n, err := c.Write(full, Offset)
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("blocked Write ended with %v, want os.ErrClosed", err)
		}
		writeRes <- n
	}()

	time.Sleep(20 * time.Millisecond) // let both block; the assertions hold either way
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("pending Read ended with %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	select {
	case n := <-writeRes:
		if n != channelQueue {
			t.Errorf("blocked Write reported %d packets, want %d", n, channelQueue)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Write")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Close")
	}
	bufs, sizes := newBufs(1, 1400)
	if _, err := c.Read(bufs, sizes, Offset); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
}
