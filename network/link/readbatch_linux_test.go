package link

import (
	"testing"
	"time"
)

// A reader takes every datagram queued, up to a batch, with one system call.
func TestReadBatchTakesSeveralDatagrams(t *testing.T) {
	f := newReadFixture(t, false, withOffload(false, false))
	const extra = 8
	f.send(t, MaxBatch+extra)
	time.Sleep(50 * time.Millisecond) // loopback queues them at once; this is margin for a loaded machine
	before := f.b.Stats().ReadCalls
	for i, want := range []int{MaxBatch, extra} {
		n, err := f.b.readBatch(f.r)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("read %d took %d datagrams, want %d", i, n, want)
		}
	}
	if got := f.b.Stats().ReadCalls - before; got < 2 {
		t.Fatalf("ReadCalls rose by %d over two reads", got)
	}
	if f.delivered.Load() != MaxBatch+extra {
		t.Fatalf("%d of %d delivered", f.delivered.Load(), MaxBatch+extra)
	}
}
