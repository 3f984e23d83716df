package link

import (
	"time"

	"go.uber.org/zap"
)

// timerLoop is the node's one timer goroutine. Every tick it walks the links and does whatever is
// due: declare dead peers, send keepalives, start rekeys, retransmit initiations, retire old sessions.
// One goroutine with a coarse tick costs less than a timer per link and per event, and it keeps the
// timing logic in one place (linkTimers).
func (n *Node) timerLoop() {
	t := time.NewTicker(n.times.tick)
	defer t.Stop()
	var links []*Link
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
		case <-n.kick:
		}
		now := n.clock()
		n.limiter.collect(now)
		n.trav.expire(now)
		if n.srv != nil {
			n.srv.expire(now)
		}
		links = n.links(links[:0])
		for _, l := range links {
			n.linkTimers(l, now)
		}
		clear(links) // do not keep closed links reachable until the next pass
	}
}

// linkTimers does what is due on one link. Decisions are made under the link's lock; the work they
// lead to (a DH for a new initiation, a keepalive write, OnLinkDown) is done after it is released.
func (n *Node) linkTimers(l *Link, now time.Duration) {
	if l.closed.Load() {
		return
	}
	c, d := &n.cfg, &n.times
	var drop [3]*session
	l.mu.Lock()
	if p := l.previous; p != nil && (p.retireAt != 0 && now >= p.retireAt || p.expired(now, d.rejectAfter)) {
		drop[0], l.previous = p, nil
	}
	if nx := l.next; nx != nil && now-nx.born >= d.unconfirmedAfter {
		drop[1], l.next = nx, nil
	}
	cur := l.current.Load()
	if cur != nil && cur.expired(now, d.rejectAfter) {
		drop[2], cur = cur, nil
		l.current.Store(nil)
	}
	established := l.established.Load()
	dead := established && now-time.Duration(l.lastRecv.Load()) >= c.DeadAfter
	abandon := !established && l.dialers == 0 && l.pending == nil && l.next == nil

	var retry, rekey bool
	var expect *pendingHandshake
	if p := l.pending; p != nil {
		if now >= p.nextRetry {
			if l.dialers > 0 || established {
				retry, expect = true, p
			} else {
				l.pending = nil
				defer n.dropPending(p)
			}
		}
	} else if established {
		rekey = n.needsRekey(cur, now)
	}
	keepalive := established && cur != nil && now-time.Duration(l.lastSent.Load()) >= c.KeepaliveInterval
	l.mu.Unlock()

	for _, s := range drop {
		n.index.removeSession(s)
	}
	switch {
	case dead:
		if l.shutdown(ErrDead) {
			n.log.Debug("peer dead", zap.Stringer("remote", l.RemoteAddr()))
		}
		return
	case abandon:
		l.shutdown(ErrClosed)
		return
	}
	if retry || rekey {
		if err := n.initiate(l, expect); err != nil {
			n.log.Debug("initiate", zap.Error(err))
		}
	}
	if keepalive {
		_ = l.send(nil)
	}
	if rr := l.relay.Load(); rr != nil && established && cur != nil {
		n.traverseTimers(l, rr, now)
	}
}

// needsRekey reports whether the link's sending session should be replaced now. Normally its initiator
// does it at RekeyAfter; the responder steps in a retry later in case the initiator's handshakes are
// being lost; and a link with no usable session at all rekeys at once.
func (n *Node) needsRekey(cur *session, now time.Duration) bool {
	if cur == nil {
		return true
	}
	if cur.sendCounter.Load() >= rekeyAfterMessages {
		return true
	}
	age := now - cur.born
	if cur.initiator {
		return age >= n.cfg.RekeyAfter
	}
	return age >= n.times.responderRekeyAfter
}
