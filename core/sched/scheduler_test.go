package sched

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// warmup is the circuit used to park the drain goroutine in Send, so a test can fill the queues
// before any scheduling decision is made.
const warmup = math.MaxUint64

// newCell returns a size-byte cell carrying its circuit and sequence number, so the fake link can
// check what it is given.
func newCell(circuit uint64, seq, size int) []byte {
	b := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(b[0:], circuit)
	binary.BigEndian.PutUint64(b[8:], uint64(seq))
	return b
}

type sentCell struct {
	circuit uint64
	seq     int
	size    int
}

// link is a fake link. Its Send records every call and, when gate is set, takes a token from
// gate first, so the test decides when each Send returns (closing gate lets all through).
type link struct {
	gate     chan struct{}
	openGate sync.Once
	fail     func(circuit uint64) bool

	mu       sync.Mutex
	calls    int
	sent     []sentCell
	released map[*byte]int
	problems []string
}

func newLink(gated bool) *link {
	l := &link{released: make(map[*byte]int)}
	if gated {
		l.gate = make(chan struct{})
	}
	return l
}

var errLinkDown = errors.New("link down")

func (l *link) send(circuit uint64, b []byte) error {
	l.mu.Lock()
	l.calls++
	l.mu.Unlock()
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if got := binary.BigEndian.Uint64(b); got != circuit {
		l.problems = append(l.problems, fmt.Sprintf("cell of circuit %d sent on circuit %d", got, circuit))
	}
	if l.released[&b[0]] != 0 {
		l.problems = append(l.problems, fmt.Sprintf("circuit %d: buffer sent after release", circuit))
	}
	l.sent = append(l.sent, sentCell{circuit, int(binary.BigEndian.Uint64(b[8:])), len(b)})
	if l.fail != nil && l.fail(circuit) {
		return errLinkDown
	}
	return nil
}

func (l *link) release(b []byte) {
	l.mu.Lock()
	l.released[&b[0]]++
	l.mu.Unlock()
}

// open lets every Send through from now on.
func (l *link) open() {
	l.openGate.Do(func() { close(l.gate) })
}

// start returns a scheduler sending on l. Cleanup opens the gate before closing the scheduler,
// so a test that fails while Send is held stops cleanly instead of hanging in Close.
func (l *link) start(t *testing.T, cfg Config) *Scheduler {
	s := New(cfg)
	t.Cleanup(func() {
		if l.gate != nil {
			l.open()
		}
		s.Close()
	})
	return s
}

func (l *link) config() Config {
	return Config{Send: l.send, Release: l.release}
}

func (l *link) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

func (l *link) releaseCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.released {
		n += c
	}
	return n
}

func (l *link) sentCells() []sentCell {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sentCell(nil), l.sent...)
}

// check fails t if the link saw a misrouted or early-released cell, or if any of bufs was not
// released exactly once.
func (l *link) check(t *testing.T, bufs [][]byte) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Error(p)
	}
	for _, b := range bufs {
		if n := l.released[&b[0]]; n != 1 {
			t.Errorf("circuit %d cell %d released %d times, want 1",
				binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), n)
		}
	}
}

// parkDrain enqueues one warmup cell and waits until the drain goroutine is stuck sending it.
func parkDrain(t *testing.T, s *Scheduler, l *link) []byte {
	t.Helper()
	b := newCell(warmup, 0, 16)
	if !s.Enqueue(warmup, b) {
		t.Fatal("warmup cell dropped")
	}
	waitFor(t, "drain goroutine in Send", func() bool { return l.callCount() >= 1 })
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitDrained(t *testing.T, s *Scheduler, l *link, sends int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d sends", sends), func() bool { return len(l.sentCells()) >= sends })
	waitFor(t, "empty queues", func() bool { return s.Stats().Queued == 0 })
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{QueueCells: -1, Quantum: -2, MaxCircuits: -3}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, field := range []string{"Send", "QueueCells", "Quantum", "MaxCircuits"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not mention %s", err, field)
		}
	}
	if err := (Config{Send: func(uint64, []byte) error { return nil }}).Validate(); err != nil {
		t.Errorf("zero config with Send rejected: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted a config without Send")
		}
	}()
	New(Config{})
}

func TestFIFOAndExactlyOnce(t *testing.T) {
	l := newLink(true)
	cfg := l.config()
	cfg.QueueCells = 50 // not a multiple of the batch, so the rings wrap mid-batch
	s := l.start(t, cfg)
	bufs := [][]byte{parkDrain(t, s, l)}

	const circuits, perCircuit = 5, 200
	next := make([]int, circuits)
	for round := 0; round < perCircuit/cfg.QueueCells; round++ {
		for c := range circuits {
			for range cfg.QueueCells {
				b := newCell(uint64(c), next[c], 100+c*300)
				next[c]++
				bufs = append(bufs, b)
				if !s.Enqueue(uint64(c), b) {
					t.Fatalf("circuit %d cell %d dropped", c, next[c]-1)
				}
			}
		}
		if round == 0 {
			l.open()
		}
		waitDrained(t, s, l, len(bufs))
	}
	s.Close()

	counts := make([]int, circuits)
	for _, c := range l.sentCells()[1:] {
		if c.seq != counts[c.circuit] {
			t.Fatalf("circuit %d: sent cell %d, want %d", c.circuit, c.seq, counts[c.circuit])
		}
		counts[c.circuit]++
	}
	for c, n := range counts {
		if n != perCircuit {
			t.Errorf("circuit %d: %d cells sent, want %d", c, n, perCircuit)
		}
	}
	l.check(t, bufs)
	st := s.Stats()
	if want := uint64(len(bufs)); st.Enqueued != want || st.Sent != want {
		t.Errorf("stats %+v, want %d enqueued and sent", st, want)
	}
}

// backlogWindow returns the sends made while every one of circuits still had cells to send: from
// the first send up to the last send of whichever circuit finished first.
func backlogWindow(sends []sentCell, circuits ...uint64) []sentCell {
	last := make(map[uint64]int)
	for i, c := range sends {
		last[c.circuit] = i
	}
	end := len(sends)
	for _, c := range circuits {
		end = min(end, last[c]+1)
	}
	return sends[:end]
}

func TestFairnessBusyCircuitCannotStarveOthers(t *testing.T) {
	const a, b, c = 1, 2, 3
	l := newLink(true)
	s := l.start(t, l.config())
	bufs := [][]byte{parkDrain(t, s, l)}

	var wg sync.WaitGroup
	aBusy := make(chan struct{})
	var aAccepted, aDropped int
	aBufs := make([][]byte, 10_000)
	for i := range aBufs {
		aBufs[i] = newCell(a, i, 512)
	}
	wg.Go(func() {
		for i, buf := range aBufs {
			if s.Enqueue(a, buf) {
				aAccepted++
			} else {
				aDropped++
			}
			if i == 1000 {
				close(aBusy) // A's queue is full by now: B and C arrive behind a backlog
			}
		}
	})
	quiet := func(circuit uint64) [][]byte {
		bs := make([][]byte, 100)
		for i := range bs {
			bs[i] = newCell(circuit, i, 512)
		}
		wg.Go(func() {
			<-aBusy
			for i, buf := range bs {
				if !s.Enqueue(circuit, buf) {
					t.Errorf("circuit %d cell %d dropped", circuit, i)
				}
			}
		})
		return bs
	}
	bBufs, cBufs := quiet(b), quiet(c)
	wg.Wait()
	bufs = append(bufs, aBufs...)
	bufs = append(bufs, bBufs...)
	bufs = append(bufs, cBufs...)

	l.open()
	waitDrained(t, s, l, 1+aAccepted+len(bBufs)+len(cBufs))
	st := s.Stats()
	if aDropped == 0 || st.DroppedFull != uint64(aDropped) {
		t.Errorf("A dropped %d cells, stats say %d dropped: want A, and only A, to drop", aDropped, st.DroppedFull)
	}

	sends := l.sentCells()[1:]
	sentBy := make(map[uint64]int)
	for _, c := range sends {
		sentBy[c.circuit]++
	}
	if sentBy[b] != len(bBufs) || sentBy[c] != len(cBufs) {
		t.Errorf("sent %d of B's and %d of C's cells, want all %d", sentBy[b], sentBy[c], len(bBufs))
	}
	window := backlogWindow(sends, a, b, c)
	if len(window) < 250 {
		t.Fatalf("all three circuits were backlogged for only %d sends, want about 300", len(window))
	}
	share := make(map[uint64]int)
	for _, c := range window {
		share[c.circuit]++
	}
	t.Logf("sends while all were backlogged: %d (A %d, B %d, C %d)", len(window), share[a], share[b], share[c])
	for _, circuit := range []uint64{a, b, c} {
		if f := float64(share[circuit]) / float64(len(window)); math.Abs(f-1.0/3) > 0.05 {
			t.Errorf("circuit %d got %.3f of %d sends while all were backlogged, want 1/3 ± 0.05", circuit, f, len(window))
		}
	}
	s.Close()
	l.check(t, bufs)
}

func TestByteFairness(t *testing.T) {
	const small, large = 1, 2
	l := newLink(true)
	cfg := l.config()
	cfg.QueueCells = 4096 // deep enough that both stay backlogged over ~180 rounds
	s := l.start(t, cfg)
	parkDrain(t, s, l)

	enqueued := 1
	for i := range cfg.QueueCells {
		for _, c := range []struct {
			circuit uint64
			size    int
		}{{small, 64}, {large, 1400}} {
			if !s.Enqueue(c.circuit, newCell(c.circuit, i, c.size)) {
				t.Fatalf("circuit %d cell %d dropped", c.circuit, i)
			}
			enqueued++
		}
	}
	l.open()
	waitDrained(t, s, l, enqueued)

	bytes := make(map[uint64]int)
	window := backlogWindow(l.sentCells()[1:], small, large)
	for _, c := range window {
		bytes[c.circuit] += c.size
	}
	if bytes[large] == 0 {
		t.Fatalf("large-cell circuit got nothing while both were backlogged (%d sends)", len(window))
	}
	t.Logf("bytes while both were backlogged: %d of small cells, %d of large", bytes[small], bytes[large])
	if r := float64(bytes[small]) / float64(bytes[large]); r < 0.8 || r > 1.2 {
		t.Errorf("while both were backlogged: %d bytes of 64-byte cells, %d of 1400-byte cells (ratio %.2f), want within ±20%%",
			bytes[small], bytes[large], r)
	}
}

// pool hands out cell buffers and takes them back through Release; made counts how many it ever
// allocated, which bounds the memory the scheduler pins.
type pool struct {
	mu   sync.Mutex
	free [][]byte
	made int
}

func (p *pool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	p.made++
	return make([]byte, 512)
}

func (p *pool) put(b []byte) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

func TestBoundedWhenLinkIsStuck(t *testing.T) {
	l := newLink(true)
	var p pool
	cfg := l.config()
	cfg.Release = p.put
	s := l.start(t, cfg)
	parkDrain(t, s, l)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const cells = 1_000_000
	done := make(chan string)
	go func() {
		for i := range cells {
			b := p.get()
			binary.BigEndian.PutUint64(b, 7)
			s.Enqueue(7, b)
			if i%10_000 == 0 {
				if q := s.Stats().Queued; q > DefaultQueueCells {
					done <- fmt.Sprintf("after %d cells, %d queued, want at most %d", i, q, DefaultQueueCells)
					return
				}
			}
		}
		done <- ""
	}()
	select {
	case problem := <-done:
		if problem != "" {
			t.Fatal(problem)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueue blocked behind a stuck link")
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes queueing behind a stuck link", grew)
	}
	if p.made > DefaultQueueCells+1 {
		t.Errorf("%d buffers live at once, want at most %d queued + 1 being dropped", p.made, DefaultQueueCells+1)
	}
	st := s.Stats()
	if st.Queued != DefaultQueueCells || st.DroppedFull != cells-DefaultQueueCells {
		t.Errorf("stats %+v, want %d queued and %d dropped", st, DefaultQueueCells, cells-DefaultQueueCells)
	}

	l.open()
	waitDrained(t, s, l, 1+DefaultQueueCells)
	if st := s.Stats(); st.Sent != 1+DefaultQueueCells {
		t.Errorf("sent %d cells, want %d", st.Sent, 1+DefaultQueueCells)
	}
}

func TestForgetReleasesQueuedCells(t *testing.T) {
	const gone, kept = 1, 2
	l := newLink(true)
	s := l.start(t, l.config())
	bufs := [][]byte{parkDrain(t, s, l)}

	enqueue := func(circuit uint64, n int) {
		for i := range n {
			b := newCell(circuit, i, 64)
			bufs = append(bufs, b)
			if !s.Enqueue(circuit, b) {
				t.Fatalf("circuit %d cell %d dropped", circuit, i)
			}
		}
	}
	enqueue(gone, 50)
	enqueue(kept, 10)
	s.Forget(gone)
	if n := l.releaseCount(); n != 50 {
		t.Errorf("%d buffers released by Forget, want 50", n)
	}
	if st := s.Stats(); st.Forgotten != 50 || st.Queued != 10 || st.ActiveCircuits != 1 {
		t.Errorf("after Forget: stats %+v, want 50 forgotten, 10 queued on 1 circuit", st)
	}
	s.Forget(99) // unknown circuit: nothing to do

	l.open()
	waitDrained(t, s, l, 1+10)
	for _, c := range l.sentCells() {
		if c.circuit == gone {
			t.Fatalf("forgotten circuit's cell %d was sent", c.seq)
		}
	}

	s.Forget(kept) // idle: its queue goes spare
	s.mu.Lock()
	spare := s.spare.len
	s.mu.Unlock()
	if spare != 2 {
		t.Errorf("%d spare queues after forgetting two circuits, want 2", spare)
	}
	enqueue(gone, 5) // a forgotten circuit can come back
	waitDrained(t, s, l, 1+10+5)
	s.Close()
	l.check(t, bufs)
}

func TestCloseReleasesEverythingAndStops(t *testing.T) {
	l := newLink(true)
	s := l.start(t, l.config())
	bufs := [][]byte{parkDrain(t, s, l)}
	for c := range uint64(5) {
		for i := range 10 {
			b := newCell(c, i, 64)
			bufs = append(bufs, b)
			s.Enqueue(c, b)
		}
	}

	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	waitFor(t, "queued buffers released", func() bool { return l.releaseCount() == 50 })
	select {
	case <-closed:
		t.Fatal("Close returned while Send was still running")
	case <-time.After(20 * time.Millisecond):
	}
	l.open()
	<-closed
	goleak.VerifyNone(t)

	late := newCell(9, 0, 64)
	bufs = append(bufs, late)
	if s.Enqueue(9, late) {
		t.Error("Enqueue after Close accepted a cell")
	}
	s.Close()
	s.Forget(0)
	l.check(t, bufs)
	if st := s.Stats(); st.Sent != 1 || st.DroppedClosed != 51 || st.Queued != 0 || st.ActiveCircuits != 0 {
		t.Errorf("stats %+v, want 1 sent, 51 dropped on close, nothing queued", st)
	}
}

func TestCloseDropsRestOfBatch(t *testing.T) {
	l := newLink(true)
	s := l.start(t, l.config())
	bufs := [][]byte{parkDrain(t, s, l)}
	for i := range 40 {
		b := newCell(1, i, 64)
		bufs = append(bufs, b)
		s.Enqueue(1, b)
	}
	l.gate <- struct{}{} // warmup sent; the drain takes a full batch and parks on its first cell
	waitFor(t, "second Send", func() bool { return l.callCount() == 2 })
	if st := s.Stats(); st.Queued != 40-batchCells {
		t.Fatalf("%d cells queued, want %d left after a full batch", st.Queued, 40-batchCells)
	}

	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	waitFor(t, "queued buffers released", func() bool { return l.releaseCount() == 1+40-batchCells })
	l.open()
	<-closed

	l.check(t, bufs)
	st := s.Stats()
	if st.Sent != 2 || st.DroppedClosed != 39 || st.Enqueued != st.Sent+st.DroppedClosed {
		t.Errorf("stats %+v, want 2 sent and the other 39 dropped on close", st)
	}
}

func TestSendErrorsAreCountedAndReleased(t *testing.T) {
	l := newLink(false)
	l.fail = func(circuit uint64) bool { return circuit == 1 }
	s := l.start(t, l.config())
	var bufs [][]byte
	for i := range 20 {
		b := newCell(uint64(i%2), i, 64)
		bufs = append(bufs, b)
		s.Enqueue(uint64(i%2), b)
	}
	waitDrained(t, s, l, 20)
	s.Close()
	l.check(t, bufs)
	if st := s.Stats(); st.Sent != 10 || st.SendErrors != 10 {
		t.Errorf("stats %+v, want 10 sent and 10 send errors", st)
	}
}

func TestMaxCircuitsBoundsQueues(t *testing.T) {
	l := newLink(true)
	cfg := l.config()
	cfg.MaxCircuits = 2
	s := l.start(t, cfg)
	// The warmup cell is in the drain goroutine's hands, so its circuit is idle yet holds a queue.
	bufs := [][]byte{parkDrain(t, s, l)}

	enqueue := func(circuit uint64, seq int) bool {
		b := newCell(circuit, seq, 64)
		bufs = append(bufs, b)
		return s.Enqueue(circuit, b)
	}
	if !enqueue(1, 0) {
		t.Fatal("cell dropped below MaxCircuits")
	}
	if !enqueue(2, 0) {
		t.Fatal("cell dropped although the idle warmup circuit's queue could be reused")
	}
	if enqueue(3, 0) {
		t.Error("a third circuit got a queue while both queues held cells")
	}
	if st := s.Stats(); st.DroppedFull != 1 || st.ActiveCircuits != 2 {
		t.Errorf("stats %+v, want 1 dropped and 2 active circuits", st)
	}

	l.open()
	waitDrained(t, s, l, 3)
	if !enqueue(3, 1) || !enqueue(4, 0) {
		t.Error("new circuits dropped although idle circuits' queues could be reused")
	}
	waitDrained(t, s, l, 5)
	s.mu.Lock()
	queues := len(s.queues) + s.spare.len
	s.mu.Unlock()
	if queues > cfg.MaxCircuits {
		t.Errorf("%d queues kept, want at most %d", queues, cfg.MaxCircuits)
	}
	s.Close()
	l.check(t, bufs)
}

func TestConcurrentEnqueue(t *testing.T) {
	l := newLink(false)
	cfg := l.config()
	cfg.QueueCells = 16 // small, so drops happen too
	s := l.start(t, cfg)

	const producers, circuitsEach, cellsEach = 16, 8, 2000
	var wg sync.WaitGroup
	var accepted, refused atomic.Uint64
	all := make([][][]byte, producers)
	for p := range producers {
		wg.Go(func() {
			for i := range cellsEach {
				c := uint64(p*circuitsEach + i%circuitsEach)
				b := newCell(c, i, 32+i%200)
				all[p] = append(all[p], b)
				if s.Enqueue(c, b) {
					accepted.Add(1)
				} else {
					refused.Add(1)
				}
				switch i % 500 {
				case 250:
					s.Forget(c)
				case 499:
					s.Stats()
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "empty queues", func() bool { return s.Stats().Queued == 0 })
	s.Close()

	var bufs [][]byte
	for _, bs := range all {
		bufs = append(bufs, bs...)
	}
	l.check(t, bufs)
	st := s.Stats()
	if st.Enqueued != accepted.Load() || st.DroppedFull != refused.Load() {
		t.Errorf("stats %+v, but %d accepted and %d refused", st, accepted.Load(), refused.Load())
	}
	if st.Enqueued != st.Sent+st.Forgotten+st.DroppedClosed {
		t.Errorf("stats %+v: accepted cells unaccounted for", st)
	}
	last := make(map[uint64]int)
	for _, c := range l.sentCells() {
		if prev, ok := last[c.circuit]; ok && c.seq <= prev {
			t.Fatalf("circuit %d: cell %d sent after cell %d", c.circuit, c.seq, prev)
		}
		last[c.circuit] = c.seq
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	for _, circuits := range []int{1, 100} {
		t.Run(fmt.Sprintf("circuits=%d", circuits), func(t *testing.T) {
			sent := make(chan struct{}, circuits)
			s := New(Config{Send: func(uint64, []byte) error {
				sent <- struct{}{}
				return nil
			}})
			defer s.Close()
			b := make([]byte, 512)
			allocs := testing.AllocsPerRun(1000, func() {
				for c := range circuits {
					if !s.Enqueue(uint64(c), b) {
						t.Fatal("cell dropped")
					}
				}
				for range circuits {
					<-sent
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per %d cells enqueued and drained, want 0", allocs, circuits)
			}
		})
	}
}

func TestSendBatchGetsWholeBatchesInOrder(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	calls := 0
	gate := make(chan struct{}) // holds the first call until everything is queued
	s := New(Config{SendBatch: func(bufs [][]byte) (int, error) {
		<-gate
		mu.Lock()
		defer mu.Unlock()
		calls++
		for _, b := range bufs {
			got = append(got, append([]byte(nil), b...))
		}
		return len(bufs), nil
	}})
	defer s.Close()
	for i := range 100 {
		s.Enqueue(1, []byte{byte(i)})
	}
	close(gate)
	deadline := time.Now().Add(2 * time.Second)
	for s.Stats().Sent < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 100 {
		t.Fatalf("%d cells sent", len(got))
	}
	for i, b := range got {
		if b[0] != byte(i) {
			t.Fatalf("cell %d out of order", i)
		}
	}
	// At most one call took a single cell before the rest queued; the rest went 32 at a time.
	if calls > 5 {
		t.Fatalf("%d calls for 100 cells: not batched", calls)
	}
}

// Backlog names the circuits with cells waiting, how many, and how long the oldest has waited: the
// circuit stuck behind the parked one has waited longest.
func TestBacklogReportsOldestWait(t *testing.T) {
	l := newLink(true)
	s := l.start(t, l.config())
	parkDrain(t, s, l)
	s.Enqueue(1, newCell(1, 0, 16))
	s.Enqueue(1, newCell(1, 1, 16))
	time.Sleep(20 * time.Millisecond)
	s.Enqueue(2, newCell(2, 0, 16))
	got := map[uint64]time.Duration{}
	cells := map[uint64]int{}
	s.Backlog(func(circuit uint64, n int, waited time.Duration) { got[circuit], cells[circuit] = waited, n })
	if len(got) != 2 || cells[1] != 2 || cells[2] != 1 {
		t.Fatalf("backlog %v, cells %v: want circuits 1 (2 cells) and 2 (1 cell)", got, cells)
	}
	if got[1] < 20*time.Millisecond || got[1] <= got[2] {
		t.Fatalf("circuit 1 waited %v, circuit 2 %v: want 1 the older, by the 20 ms between them", got[1], got[2])
	}
}
