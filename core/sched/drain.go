package sched

// batchCells is how many cells the drain goroutine takes per lock acquisition: enough to amortize
// the lock, few enough that the lock is held briefly and Forget/Close find little in flight.
const batchCells = 32

type cell struct {
	circuit uint64
	b       []byte
}

// batchResult counts how a batch ended, to be added to Stats under the next lock acquisition.
type batchResult struct {
	sent, failed, dropped uint64
}

func (s *Scheduler) drain() {
	defer close(s.done)
	var batch [batchCells]cell
	var res batchResult
	for {
		s.mu.Lock()
		s.stats.Sent += res.sent
		s.stats.SendErrors += res.failed
		s.stats.DroppedClosed += res.dropped
		for s.active.len == 0 && !s.closed.Load() {
			s.wake.Wait()
		}
		if s.closed.Load() {
			s.mu.Unlock()
			return
		}
		n := s.popBatch(batch[:])
		s.mu.Unlock()
		res = s.sendBatch(batch[:n])
	}
}

// popBatch fills batch by deficit round robin over the active circuits and returns how many cells
// it took. A circuit's turn may span batches: its remaining credit stays in its deficit. s.mu must
// be held.
func (s *Scheduler) popBatch(batch []cell) int {
	n := 0
	for n < len(batch) && s.active.len > 0 {
		q := s.active.head
		size := len(q.peek())
		if size > q.deficit {
			// Turn over. Crediting the next turn now, rather than when the circuit reaches the
			// head again, is equivalent and keeps the state in one field.
			q.deficit += s.cfg.Quantum
			s.active.remove(q)
			s.active.pushBack(q)
			continue
		}
		q.deficit -= size
		batch[n] = cell{circuit: q.id, b: q.pop()}
		n++
		s.queued--
		if q.n == 0 {
			// Credit does not carry over an idle spell: a circuit cannot save up bandwidth by
			// staying quiet and then burst past the others.
			q.deficit = 0
			s.active.remove(q)
			s.idle.pushBack(q)
		}
	}
	return n
}

// sendBatch sends and releases the cells of batch, without the lock, so a slow Send only delays
// the link it writes to.
func (s *Scheduler) sendBatch(batch []cell) batchResult {
	if s.cfg.SendBatch != nil {
		return s.sendTogether(batch)
	}
	var res batchResult
	for i := range batch {
		c := &batch[i]
		switch {
		case s.closed.Load():
			res.dropped++
		case s.cfg.Send(c.circuit, c.b) != nil:
			res.failed++
		default:
			res.sent++
		}
		s.cfg.Release(c.b)
		*c = cell{}
	}
	return res
}

// sendTogether hands the whole batch to SendBatch in one call.
func (s *Scheduler) sendTogether(batch []cell) batchResult {
	var res batchResult
	var bufs [batchCells][]byte
	n := 0
	if s.closed.Load() {
		res.dropped = uint64(len(batch))
	} else {
		for i := range batch {
			bufs[i] = batch[i].b
		}
		n = len(batch)
		sent, _ := s.cfg.SendBatch(bufs[:n])
		res.sent = uint64(sent)
		res.failed = uint64(n - sent)
	}
	for i := range batch {
		s.cfg.Release(batch[i].b)
		batch[i] = cell{}
		bufs[i] = nil
	}
	return res
}
