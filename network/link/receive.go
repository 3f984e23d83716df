package link

import (
	"encoding/binary"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// handlePacket dispatches one datagram. Transport packets are handled here, on the reading goroutine;
// handshake messages are passed to the handshake goroutine if the rate limiter lets them through.
func (n *Node) handlePacket(r *reader, pkt []byte, from netip.AddrPort) {
	n.stats.packetsIn.Add(1)
	n.stats.bytesIn.Add(uint64(len(pkt)))
	switch k := classify(pkt); k {
	case kindTransport:
		n.receiveTransport(r, pkt, route{addr: from})
	case kindInitiation, kindResponse:
		n.queueHandshake(k, pkt, route{addr: from})
	case kindRelayed:
		n.handleRelayed(r, pkt, from)
	case kindMalformed:
		n.stats.countMalformed(pkt)
	default:
		if n.cfg.OnOther == nil || !n.cfg.OnOther(pkt, from) {
			n.stats.dropOther.Add(1)
			return
		}
		n.stats.otherIn.Add(1)
	}
}

// dropUnreadable counts a datagram that cannot be handled at all: one longer than a read slot, which
// the kernel truncated (it is no link packet, and passing its first bytes on as whole would mislead
// OnOther), or one whose source address is neither IPv4 nor IPv6.
func (n *Node) dropUnreadable(pkt []byte) {
	n.stats.packetsIn.Add(1)
	n.stats.bytesIn.Add(uint64(len(pkt)))
	n.stats.dropMalformed.Add(1)
}

// receiveTransport authenticates, decrypts and delivers a transport packet. It allocates nothing and
// takes only the index table's read lock and the session's replay-window lock.
// rt is the route it came by: a relayed packet names its rendezvous and channel.
func (n *Node) receiveTransport(r *reader, pkt []byte, rt route) {
	idx := binary.BigEndian.Uint32(pkt[4:8])
	counter := binary.BigEndian.Uint64(pkt[8:16])
	s := n.index.session(idx)
	now := n.clock()
	if s == nil || counter >= rejectAfterMessages || s.expired(now, n.times.rejectAfter) {
		n.stats.dropUnknownIndex.Add(1)
		return
	}
	msg, err := s.open(&r.nonce, pkt, counter)
	if err != nil {
		n.stats.dropBadMAC.Add(1)
		return
	}
	if !s.acceptCounter(counter) {
		n.stats.dropReplay.Add(1)
		return
	}
	l := s.link
	if l.closed.Load() {
		n.stats.dropUnknownIndex.Add(1)
		return
	}
	l.lastRecv.Store(int64(now))
	if !s.heard.Load() {
		n.firstHeard(l, s, now)
	}
	if rt.channel == 0 {
		if *l.remote.Load() != rt.addr {
			l.roam(rt.addr)
		}
		if l.relay.Load() != nil {
			l.lastDirect.Store(int64(now))
		}
	}
	if pkt[1] == flagControl {
		n.onControl(l, msg, rt)
		return
	}
	if len(msg) == 0 {
		return // keepalive
	}
	n.stats.messagesIn.Add(1)
	n.cfg.OnMessage(l, msg)
}

// firstHeard handles the first authenticated packet under s. For a responder's session it is the
// initiator's confirmation: s becomes the session Send uses, and the one it replaces keeps receiving for
// a grace period. For an initiator's session it shows the responder has switched too, so the previous
// session's grace period starts.
func (n *Node) firstHeard(l *Link, s *session, now time.Duration) {
	var drop *session
	l.mu.Lock()
	if s.heard.Load() || l.closed.Load() {
		l.mu.Unlock()
		return
	}
	s.heard.Store(true)
	confirmed := false
	switch {
	case !s.initiator && l.next == s:
		confirmed = true
		drop = l.previous
		l.previous = l.current.Swap(s)
		if l.previous != nil {
			l.previous.retireAt = now + n.times.retireGrace
		}
		l.next = nil
		l.established.Store(true)
		l.signalLocked()
	case s == l.current.Load() && l.previous != nil && l.previous.retireAt == 0:
		l.previous.retireAt = now + n.times.retireGrace
	}
	l.mu.Unlock()
	n.index.removeSession(drop)
	if confirmed {
		n.stats.handshakesCompleted.Add(1)
		n.log.Debug("session confirmed", zap.Stringer("remote", l.RemoteAddr()), zap.Uint32("index", s.localIndex))
	}
}

// handshakeJob is a handshake message waiting for the handshake goroutine, copied out of the reader's
// buffer (an initiation is the larger of the two).
type handshakeJob struct {
	kind kind
	size int
	from route
	pkt  [initiationLen]byte
}

// queueHandshake applies the cheap checks and the rate limits to a handshake message and queues it.
// Nothing here costs a DH.
// Relayed messages are limited as coming from their rendezvous.
func (n *Node) queueHandshake(k kind, pkt []byte, from route) {
	if k == kindResponse {
		e := n.index.lookup(binary.BigEndian.Uint32(pkt[8:12]))
		if e.handshake == nil {
			if e.session != nil {
				n.stats.dropReplay.Add(1) // that handshake has completed: this is a copy of its response
			} else {
				n.stats.dropUnknownIndex.Add(1)
			}
			return
		}
	}
	if !n.limiter.allow(from.addr.Addr(), n.clock()) {
		n.stats.dropRateLimited.Add(1)
		return
	}
	job := handshakeJob{kind: k, size: len(pkt), from: from}
	copy(job.pkt[:], pkt)
	select {
	case n.handshakes <- job:
	default:
		n.stats.dropRateLimited.Add(1)
	}
}

// handshakeLoop runs handshakes one at a time, off the readers' goroutines.
func (n *Node) handshakeLoop() {
	for {
		select {
		case <-n.closing:
			return
		case job := <-n.handshakes:
			pkt := job.pkt[:job.size]
			if job.kind == kindInitiation {
				n.handleInitiation(pkt, job.from)
			} else {
				n.handleResponse(pkt, job.from)
			}
		}
	}
}

// handleInitiation answers an initiation: it authenticates the initiator, refuses stale timestamps and
// refused keys, and keeps the new session as the link's next one until the initiator confirms it.
// An initiation relayed by a rendezvous must come from the peer the rendezvous introduced on its
// channel; the link made for it then sends along that channel until a direct path is confirmed.
func (n *Node) handleInitiation(pkt []byte, rt route) {
	from := rt.addr
	m, err := decodeInitiation(pkt)
	if err != nil {
		n.stats.dropMalformed.Add(1)
		return
	}
	hs, err := readInitiation(n.local, &m)
	if err != nil {
		n.refuseHandshake(&n.stats.dropBadMAC, "initiation failed authentication", from)
		return
	}
	if hs.peer == n.local.pub {
		n.refuseHandshake(&n.stats.dropRefused, "initiation from our own key", from)
		return
	}
	if n.cfg.Accept != nil && !n.cfg.Accept(hs.peer) {
		n.refuseHandshake(&n.stats.dropRefused, "initiation refused by Accept", from)
		return
	}
	if !n.seen.accept(hs.peer, hs.timestamp) {
		n.refuseHandshake(&n.stats.dropReplay, "initiation replayed", from)
		return
	}
	idx := n.index.reserve()
	resp, ks, err := hs.writeResponse(idx)
	if err != nil {
		n.index.release(idx)
		n.refuseHandshake(&n.stats.dropBadMAC, "cannot answer initiation", from)
		return
	}
	addr := from
	var intro *channelInfo
	if rt.channel != 0 {
		if intro = n.trav.channel(rt.channel, from); intro == nil || intro.peer != hs.peer {
			n.index.release(idx)
			n.refuseHandshake(&n.stats.dropRefused, "relayed initiation from a peer not introduced on its channel", from)
			return
		}
		addr = intro.candidate
	}
	l, err := n.linkFor(hs.peer, addr)
	if err != nil {
		n.index.release(idx)
		return
	}
	now := n.clock()
	s, err := newSession(l, idx, hs.index, false, now, &ks)
	if err != nil {
		n.index.release(idx)
		n.refuseHandshake(&n.stats.dropRefused, "session", from)
		return
	}
	l.mu.Lock()
	if l.closed.Load() || !hs.timestamp.after(l.lastInit) {
		l.mu.Unlock()
		n.index.release(idx)
		n.refuseHandshake(&n.stats.dropReplay, "initiation replayed", from)
		return
	}
	l.lastInit = hs.timestamp
	old := l.next
	l.next = s
	n.index.set(idx, indexEntry{session: s})
	l.lastRecv.Store(int64(now))
	l.mu.Unlock()
	n.index.removeSession(old)
	if intro != nil {
		n.attachRelay(l, intro)
	}

	var buf [relayHeaderLen + responseLen]byte
	appendResponse(buf[relayHeaderLen:relayHeaderLen], &resp)
	if err := n.writeVia(buf[:], responseLen, rt); err != nil {
		n.log.Debug("send response", zap.Stringer("to", from), zap.Error(err))
	}
}

// handleResponse completes a handshake this node initiated. The new session is usable at once: the
// response proves the responder has it, and its first packet (a keepalive if there is nothing else)
// confirms it to the responder.
func (n *Node) handleResponse(pkt []byte, rt route) {
	from := rt.addr
	m, err := decodeResponse(pkt)
	if err != nil {
		n.stats.dropMalformed.Add(1)
		return
	}
	p := n.index.lookup(m.ReceiverIndex).handshake
	if p == nil {
		n.stats.dropUnknownIndex.Add(1) // completed or superseded while queued
		return
	}
	p.mu.Lock()
	var ks sessionKeys
	if p.hs == nil {
		err = ErrClosed
	} else {
		ks, err = p.hs.readResponse(&m)
	}
	p.mu.Unlock()
	if err != nil {
		n.refuseHandshake(&n.stats.dropBadMAC, "response failed authentication", from)
		return
	}
	l := p.link
	now := n.clock()
	s, err := newSession(l, p.index, m.SenderIndex, true, now, &ks)
	if err != nil {
		n.refuseHandshake(&n.stats.dropRefused, "session", from)
		return
	}
	l.mu.Lock()
	if l.closed.Load() || l.pending != p {
		l.mu.Unlock()
		n.stats.dropUnknownIndex.Add(1)
		return
	}
	l.pending = nil
	n.index.set(p.index, indexEntry{session: s})
	drop := l.previous
	l.previous = l.current.Swap(s)
	if l.previous != nil {
		l.previous.retireAt = 0 // until the responder is heard under s
	}
	l.established.Store(true)
	l.lastRecv.Store(int64(now))
	l.signalLocked()
	l.mu.Unlock()
	n.index.removeSession(drop)
	p.mu.Lock()
	p.hs.wipe()
	p.hs = nil
	p.mu.Unlock()
	if rt.channel == 0 && *l.remote.Load() != from {
		l.roam(from)
	}
	n.stats.handshakesCompleted.Add(1)
	n.log.Debug("session established", zap.Stringer("remote", from), zap.Uint32("index", s.localIndex))
	// Confirms the session to the responder now rather than at its first message, along the link's
	// route. Whatever else went under the session already may not have reached it: a punch ping goes
	// straight to a NAT that may drop it.
	_ = l.send(nil)
}

// refuseHandshake counts a handshake message refused after its cryptography was checked.
func (n *Node) refuseHandshake(reason interface{ Add(uint64) uint64 }, why string, from netip.AddrPort) {
	reason.Add(1)
	n.stats.handshakesFailed.Add(1)
	n.log.Debug("handshake refused", zap.String("reason", why), zap.Stringer("from", from))
}
