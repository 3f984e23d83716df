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
			q.push([]byte{next})
			next++
		}
		for q.n > 1 {
			if got := q.pop()[0]; got != want {
				t.Fatalf("popped %d, want %d", got, want)
			}
			want++
		}
	}
	q.push([]byte{next})
	q.push([]byte{next + 1})
	if !q.full() {
		t.Fatalf("not full with %d of %d cells", q.n, len(q.cells))
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
