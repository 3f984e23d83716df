package sched

import "testing"

func TestCircuitQueueRingWraps(t *testing.T) {
	q := newCircuitQueue(3)
	next, want := byte(0), byte(0)
	// Push two, pop one, many times over, so head and tail wrap repeatedly.
	for range 10 {
		for range 2 {
			if q.full() {
				t.Fatalf("full with %d cells", q.n)
			}
			q.push([]byte{next}, 0)
			next++
		}
		for q.n > 1 {
			if got := q.pop()[0]; got != want {
				t.Fatalf("popped %d, want %d", got, want)
			}
			want++
		}
	}
	q.push([]byte{next}, 0)
	q.push([]byte{next + 1}, 0)
	if !q.full() {
		t.Fatalf("not full with %d of %d cells", q.n, q.max)
	}
	for _, c := range q.cells {
		if c == nil {
			t.Fatal("full ring has an empty slot")
		}
	}
	for q.n > 0 {
		q.pop()
	}
	for i, c := range q.cells {
		if c != nil {
			t.Fatalf("slot %d still pins a buffer after pop", i)
		}
	}
}

func TestCircuitQueueGrowsOnlyWhenBusy(t *testing.T) {
	q := newCircuitQueue(100)
	if len(q.cells) != initialRing {
		t.Fatalf("a new queue has %d slots, want %d", len(q.cells), initialRing)
	}
	// Wrap the small ring first, so growing must unroll it.
	for i := range 5 {
		q.push([]byte{byte(i)}, 0)
	}
	for range 5 {
		q.pop()
	}
	if len(q.cells) != initialRing {
		t.Fatalf("a queue that never held more than 5 cells grew to %d slots", len(q.cells))
	}
	for i := range 100 {
		if q.full() {
			t.Fatalf("full at %d of 100", i)
		}
		q.push([]byte{byte(i)}, int64(i))
	}
	if !q.full() || len(q.cells) != 100 {
		t.Fatalf("full %v with %d slots, want a full ring of 100", q.full(), len(q.cells))
	}
	for i := range 100 {
		if got := q.oldest(); got != int64(i) {
			t.Fatalf("cell %d's queuing time is %d: growing lost the times", i, got)
		}
		if got := q.pop()[0]; got != byte(i) {
			t.Fatalf("cell %d came out as %d: growing reordered the ring", i, got)
		}
	}
}

func TestQueueList(t *testing.T) {
	var l queueList
	qs := []*circuitQueue{{id: 0}, {id: 1}, {id: 2}, {id: 3}}
	for _, q := range qs {
		l.pushBack(q)
	}
	l.remove(qs[2]) // middle
	l.remove(qs[3]) // tail
	l.pushBack(qs[3])
	var got []uint64
	for l.len > 0 {
		got = append(got, l.popFront().id)
	}
	want := []uint64{0, 1, 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if l.head != nil || l.tail != nil {
		t.Fatal("empty list still points at queues")
	}
}
