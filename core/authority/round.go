package authority

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// A round's document is signed roundBudget after the round starts at the latest, whatever its crawl
// and probes do; the round waits crawlWait for its crawl before it probes with what it knows. A
// document is valid for at least two periods from its signing (Config, sign), so it is still valid
// when its successor is served, at most a period and a half (and the time signing takes) later.
func roundBudget(period time.Duration) time.Duration { return period / 2 }
func crawlWait(period time.Duration) time.Duration   { return period / 4 }

// overdueAfter is how long a probe may go without an answer from its relay before a round's deadline
// counts it as failed, though it still runs: its timeout, but at most a period, so that a timeout
// longer than the period hides a dead relay for two rounds at most. Never less than the timeout
// (when that fits a period): a relay is not failed for an answer it had not been given time for.
func overdueAfter(timeout, period time.Duration) time.Duration { return min(timeout, period) }

// run is the rounds: one at once, then one each period on a fixed schedule. Should a round still
// overrun its period (its budget is half of it; a stalled disk), the next starts when it ends.
func (a *Authority) run() {
	next := time.Now()
	for {
		a.round(next)
		next = next.Add(a.cfg.Period)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

// round is one period's work; see the package documentation. The crawl and the probes run apart from
// it: what has not come back by the round's deadline comes into a later round, and the document is
// signed from what the authority knows at the deadline.
func (a *Authority) round(start time.Time) {
	ctx := a.ctx
	cutoff := time.NewTimer(time.Until(start.Add(crawlWait(a.cfg.Period))))
	defer cutoff.Stop()
	deadline := time.NewTimer(time.Until(start.Add(roundBudget(a.cfg.Period))))
	defer deadline.Stop()

	// The crawl: the result of one that ended since the last round, then a new one, awaited until
	// the cutoff. One that is still running keeps running; no other starts until it ends.
	crawls := 0
	if a.crawling {
		select {
		case cr := <-a.crawlDone:
			a.applyCrawl(cr)
			crawls++
		default:
		}
	}
	if !a.crawling {
		a.crawling, a.crawlStart = true, start
		a.wg.Go(func() { a.crawlDone <- a.crawlFn(ctx, start) })
	}
	select {
	case cr := <-a.crawlDone:
		a.applyCrawl(cr)
		crawls++
	case <-cutoff.C:
	case <-ctx.Done():
		return // closing: a round cut short is not published
	}
	if crawls == 0 {
		a.stats.roundsUncrawled.Add(1)
	}

	// The probes: those that ended since the last round are taken in; then every relay that may still
	// be listed (a descriptor valid now, not missing for drop_after_missed periods) whose last probe
	// has ended is probed again.
	done, _ := a.probes.collect(nil, time.Time{}, 0)
	a.takeIn(done)
	var targets []keys.IdentityPublic
	for id, r := range a.relays {
		if r.Missed < a.cfg.Rules.DropMissed && r.desc.Check(start, a.networkID) == nil {
			targets = append(targets, id)
			a.launchProbe(id, r.info())
		}
	}
wait:
	for !a.probes.settled(targets) {
		select {
		case <-a.probes.changed:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			return
		}
	}
	done, overdue := a.probes.collect(targets, time.Now(), overdueAfter(a.cfg.Probe.Timeout, a.cfg.Period))
	a.takeIn(done)
	for _, id := range overdue {
		// No circuit, or no answer to its probe cell, for overdueAfter: a failed probe for this
		// round. It goes on; what it finds comes into a later round.
		a.relays[id].addProbe(Probe{At: time.Unix(start.Unix(), 0)}, a.cfg.Probe.History)
		a.stats.probesOverdue.Add(1)
		a.log.Debug("probe unanswered by the round's deadline", zap.Stringer("relay", id))
	}

	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	forget := a.forgetOld(now)
	p, err := a.sign(now)
	if err != nil {
		a.log.Error("signing the directory", zap.Error(err))
		return
	}
	if err := a.db.commit(a.relays, forget, p); err != nil {
		// Nothing is served: the next round signs this serial again, from what the database holds.
		a.log.Error("storing the round", zap.Error(err))
		return
	}
	a.latest.Store(p)
	a.stats.roundMicros.Store(uint64(time.Since(start).Microseconds()))
	a.log.Info("directory published", zap.Uint64("serial", p.doc.Serial), zap.Int("relays", len(p.doc.Entries)),
		zap.Int("announced", a.lastCrawl.peers), zap.Int("accepted", len(a.lastCrawl.accepted)), zap.Int("crawls", crawls),
		zap.Int("probed", len(targets)), zap.Int("overdue", len(overdue)), zap.Duration("took", time.Since(start)))
	a.queuePointer(p)
}

// applyCrawl takes in the result of the crawl that ran.
func (a *Authority) applyCrawl(cr crawlResult) {
	a.crawling = false
	if a.ctx.Err() != nil {
		return // cut short by Close: it says nothing about the relays
	}
	for id, f := range cr.accepted {
		r := a.relays[id]
		if r == nil {
			r = &relayState{}
			a.relays[id] = r
		}
		r.accept(f, a.crawlStart)
	}
	for id, r := range a.relays {
		if _, ok := cr.accepted[id]; !ok && cr.ok && !cr.unsure[id] {
			r.Missed++
		}
	}
	a.lastCrawl = cr
	a.stats.peersFound.Store(uint64(cr.peers))
	a.stats.relaysNamed.Store(uint64(cr.named))
}

// takeIn records the probes that ended.
func (a *Authority) takeIn(done map[keys.IdentityPublic]*probeSlot) {
	for id, s := range done {
		r := a.relays[id]
		if r == nil || s.closing || (s.overdue && !s.result.OK) {
			continue // gone; cut short by Close; or failed already, when a deadline found it overdue
		}
		r.addProbe(s.result, a.cfg.Probe.History)
		if s.result.OK {
			a.stats.probesOK.Add(1)
		} else {
			a.stats.probesFailed.Add(1)
			a.log.Debug("probe failed", zap.Stringer("relay", id), zap.Error(s.err))
		}
	}
}

// A probe goes through these states; probeBoard holds each relay's latest until a round takes its
// result in.
type probeState int

const (
	probeQueued   probeState = iota // waiting for one of probe.concurrency
	probeStarted                    // building its circuit, or awaiting its probe cell's answer
	probeAnswered                   // the relay answered; its burst is waiting or being measured
	probeDone                       // result and err are set
)

type probeSlot struct {
	state   probeState
	started time.Time // when it left probeQueued
	overdue bool      // a round counted it as failed while it ran
	result  Probe
	err     error
	closing bool // cut short by Close
}

// probeBoard is the probes running or ended and not yet taken in, at most one per relay.
type probeBoard struct {
	mu      sync.Mutex
	slots   map[keys.IdentityPublic]*probeSlot
	changed chan struct{} // capacity 1: a probe ended
}

// launchProbe starts a probe of the relay id at info, unless its last one has not been taken in.
func (a *Authority) launchProbe(id keys.IdentityPublic, info netdir.Relay) {
	b := &a.probes
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.slots[id] != nil {
		return
	}
	s := &probeSlot{}
	b.slots[id] = s
	a.wg.Go(func() {
		select {
		case a.probeSlots <- struct{}{}:
		case <-a.ctx.Done():
			b.end(s, Probe{}, a.ctx.Err(), true)
			return
		}
		b.mu.Lock()
		s.state, s.started = probeStarted, time.Now()
		b.mu.Unlock()
		p, err := a.probeFn(a.ctx, info, func() { b.move(s, probeStarted, probeAnswered) })
		<-a.probeSlots
		b.end(s, p, err, a.ctx.Err() != nil)
	})
}

func (b *probeBoard) move(s *probeSlot, from, to probeState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.state == from {
		s.state = to
	}
}

func (b *probeBoard) end(s *probeSlot, p Probe, err error, closing bool) {
	b.mu.Lock()
	s.state, s.result, s.err, s.closing = probeDone, p, err, closing
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// settled reports whether the probe of every relay in ids has ended.
func (b *probeBoard) settled(ids []keys.IdentityPublic) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if s := b.slots[id]; s != nil && s.state != probeDone {
			return false
		}
	}
	return true
}

// collect takes out every probe that has ended, and returns them with those of ids that are overdue
// at now: started at least after ago and still without an answer from the relay (each round that
// finds a probe so counts it as failed; if it then fails, that is not counted again). Queued ones
// (the authority's own backlog) and answered ones (the relay is there; its burst waits for others)
// are not held against the relay.
func (b *probeBoard) collect(ids []keys.IdentityPublic, now time.Time, after time.Duration) (done map[keys.IdentityPublic]*probeSlot, overdue []keys.IdentityPublic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	done = make(map[keys.IdentityPublic]*probeSlot)
	for id, s := range b.slots {
		if s.state == probeDone {
			done[id] = s
			delete(b.slots, id)
		}
	}
	for _, id := range ids {
		if s := b.slots[id]; s != nil && s.state == probeStarted && now.Sub(s.started) >= after {
			s.overdue = true
			overdue = append(overdue, id)
		}
	}
	return done, overdue
}
