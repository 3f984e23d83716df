package sched

// circuitQueue is one circuit's cells in a ring, so a circuit that keeps sending reuses the same
// slots instead of allocating per cell. The ring starts small and doubles, up to max, only when the
// circuit has that many cells waiting: a relay holds many idle circuits, and only a busy one pays for
// a deep queue (once; rings never shrink).
type circuitQueue struct {
	id      uint64
	cells   [][]byte
	queued  []int64 // when each cell was queued (monotonic nanoseconds), parallel to cells
	head, n int
	max     int

	// deficit is the byte credit left in the circuit's current turn (deficit round robin).
	deficit int

	// prev and next link the queue into the scheduler's active or idle list; being intrusive,
	// moving a circuit between lists never allocates.
	prev, next *circuitQueue
}

// initialRing is the ring size a new queue starts with.
const initialRing = 8

func newCircuitQueue(max int) *circuitQueue {
	n := min(initialRing, max)
	return &circuitQueue{cells: make([][]byte, n), queued: make([]int64, n), max: max}
}

func (q *circuitQueue) full() bool { return q.n == q.max }

func (q *circuitQueue) push(b []byte, now int64) {
	if q.n == len(q.cells) {
		q.grow()
	}
	i := q.head + q.n
	if i >= len(q.cells) {
		i -= len(q.cells)
	}
	q.cells[i] = b
	q.queued[i] = now
	q.n++
}

// grow doubles the ring (up to max), moving the cells to its start in order.
func (q *circuitQueue) grow() {
	cells := make([][]byte, min(2*len(q.cells), q.max))
	k := copy(cells, q.cells[q.head:])
	copy(cells[k:], q.cells[:q.head])
	queued := make([]int64, len(cells))
	copy(queued, q.queued[q.head:])
	copy(queued[k:], q.queued[:q.head])
	q.cells, q.queued, q.head = cells, queued, 0
}

// oldest returns when the cell at the head of a non-empty queue was queued.
func (q *circuitQueue) oldest() int64 { return q.queued[q.head] }

func (q *circuitQueue) peek() []byte { return q.cells[q.head] }

func (q *circuitQueue) pop() []byte {
	b := q.cells[q.head]
	q.cells[q.head] = nil // the buffer goes back to its owner; the ring must not pin it
	q.head++
	if q.head == len(q.cells) {
		q.head = 0
	}
	q.n--
	return b
}

// queueList is a doubly linked FIFO of circuit queues.
type queueList struct {
	head, tail *circuitQueue
	len        int
}

func (l *queueList) pushBack(q *circuitQueue) {
	q.prev, q.next = l.tail, nil
	if l.tail == nil {
		l.head = q
	} else {
		l.tail.next = q
	}
	l.tail = q
	l.len++
}

func (l *queueList) remove(q *circuitQueue) {
	if q.prev == nil {
		l.head = q.next
	} else {
		q.prev.next = q.next
	}
	if q.next == nil {
		l.tail = q.prev
	} else {
		q.next.prev = q.prev
	}
	q.prev, q.next = nil, nil
	l.len--
}

func (l *queueList) popFront() *circuitQueue {
	q := l.head
	l.remove(q)
	return q
}
