package link

import (
	"encoding/binary"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// handleRead hands every datagram of one kernel read to handlePacket in order: the read itself, or
// each segment of a coalesced one (segSize > 0). Each is handled, or dropped and counted, on its
// own, so a bad one costs its neighbours nothing. A datagram longer than readSlotSize is counted as
// malformed, as it is when the kernel truncates it into a slot of that size without UDP GRO.
func (n *Node) handleRead(r *reader, read []byte, segSize int, from netip.AddrPort) {
	for {
		dgram, rest := udp.NextSegment(read, segSize)
		if len(dgram) > udp.SlotSize {
			n.dropUnreadable(dgram)
		} else {
			n.handlePacket(r, dgram, from)
		}
		if len(rest) == 0 {
			return
		}
		read = rest
	}
}

// handlePacket dispatches one datagram. Transport packets are handled here, on the reading goroutine;
// handshake messages are passed to the handshake goroutine if the rate limiter lets them through.
func (n *Node) handlePacket(r *reader, pkt []byte, from netip.AddrPort) {
	n.stats.packetsIn.Add(1)
	n.stats.bytesIn.Add(uint64(len(pkt)))
	switch k := classify(pkt); k {
	case kindTransport:
		n.receiveTransport(r, pkt, route{addr: from})
	case kindInitiation, kindResponse:
		n.queueHandshake(r, k, pkt, route{addr: from})
	case kindCookieReply:
		n.receiveCookieReply(pkt, route{addr: from})
	case kindRelayed:
		n.handleRelayed(r, pkt, from)
	case kindMalformed:
		n.stats.countMalformed(pkt)
	default:
		n.handleOther(pkt, from)
	}
}

// handleOther offers a datagram that is not a link packet to the HandleOther handlers in turn.
func (n *Node) handleOther(pkt []byte, from netip.AddrPort) {
	for _, h := range n.other {
		if h(pkt, from) {
			n.stats.otherIn.Add(1)
			return
		}
	}
	n.stats.dropOther.Add(1)
}

// dropUnreadable counts a datagram that cannot be handled at all: one longer than a read slot, which
// the kernel truncated (it is no link packet, and passing its first bytes on as whole would mislead
// the HandleOther handlers), or one whose source address is neither IPv4 nor IPv6.
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
	// rekey is the link whose own budget let the initiation in (ratelimit.go): its peer must be the
	// one who sent it.
	rekey *Link
}

// queueHandshake decides, without a DH, whether a handshake message is worth one, and queues it if so.
// In order, for an initiation:
//   - mac1 must be right (cookie.go): junk from whoever does not know this node's key stops here;
//   - a rekey of a live link (its rekey index names a session of a link reached by this route) goes in
//     on the link's own budget, so that a flood cannot starve the links that are up;
//   - one with a right mac2 has proven its address: the per-source and proven budgets apply;
//   - any other goes in on the open budget while there is no load, and is answered with a cookie
//     reply under load (or when that budget or the queue is spent, which is load).
//
// A response must have a right mac1 and name a pending handshake; it is limited per source.
// Relayed messages are limited as coming from their rendezvous.
func (n *Node) queueHandshake(r *reader, k kind, pkt []byte, from route) {
	now := n.clock()
	if k == kindResponse {
		if !r.mac1.valid(&n.local.macs.mac1, pkt, responseMAC1At) {
			n.stats.dropMAC1.Add(1)
			return
		}
		e := n.index.lookup(binary.BigEndian.Uint32(pkt[8:12]))
		if e.handshake == nil {
			if e.session != nil {
				n.stats.dropReplay.Add(1) // that handshake has completed: this is a copy of its response
			} else {
				n.stats.dropUnknownIndex.Add(1)
			}
			return
		}
		if !n.limiter.allow(from.addr.Addr(), now) {
			n.stats.dropRateLimited.Add(1)
			return
		}
		n.enqueue(n.live, k, pkt, from, nil, now)
		return
	}
	if !r.mac1.valid(&n.local.macs.mac1, pkt, initiationMAC1At) {
		n.stats.dropMAC1.Add(1)
		return
	}
	if l := n.rekeyLink(pkt, from); l != nil && n.limiter.allowRekey(l, now) {
		n.enqueue(n.live, k, pkt, from, l, now)
		return
	}
	if n.cookies.validMAC2(pkt, from, now) {
		if !n.limiter.allow(from.addr.Addr(), now) {
			n.markLoad(now)
			n.stats.dropRateLimited.Add(1)
			return
		}
		n.enqueue(n.proven, k, pkt, from, nil, now)
		return
	}
	open := n.limiter.allowOpen(now)
	if !open {
		n.markLoad(now)
	}
	if !open || n.underLoad(now) || !n.enqueue(n.handshakes, k, pkt, from, nil, now) {
		n.sendCookieReply(pkt, from, now)
	}
}

// enqueue hands a handshake message to the handshake goroutine. A full queue is load: the message is
// dropped (a rate-limited drop, unless the caller answers it with a cookie reply instead).
func (n *Node) enqueue(q chan handshakeJob, k kind, pkt []byte, from route, rekey *Link, now time.Duration) bool {
	job := handshakeJob{kind: k, size: len(pkt), from: from, rekey: rekey}
	copy(job.pkt[:], pkt)
	select {
	case q <- job:
		return true
	default:
		n.markLoad(now)
		if q != n.handshakes {
			n.stats.dropRateLimited.Add(1)
		}
		return false
	}
}

// underLoad reports whether initiations must prove their source address (mac2) to be handled: the
// open budget ran out or a queue filled less than underLoadFor ago, or the queue of unproven
// initiations is an eighth full (WireGuard's threshold).
func (n *Node) underLoad(now time.Duration) bool {
	return int64(now) < n.loadUntil.Load() || len(n.handshakes) >= cap(n.handshakes)/8
}

func (n *Node) markLoad(now time.Duration) {
	n.loadUntil.Store(int64(now + underLoadFor))
}

// rekeyLink returns the live link an initiation says it rekeys, if it came by that link's route: its
// rekey index names a session of ours, and its source is the link's peer address or its rendezvous
// channel. Only the peer and whoever watches the link know the index; whoever watches can drop the
// link's packets anyway.
func (n *Node) rekeyLink(pkt []byte, from route) *Link {
	idx := binary.BigEndian.Uint32(pkt[8:12])
	if idx == 0 {
		return nil
	}
	s := n.index.session(idx)
	if s == nil || s.link == nil {
		return nil
	}
	l := s.link
	if l.closed.Load() || !l.established.Load() {
		return nil
	}
	if from.channel == 0 {
		if *l.remote.Load() == from.addr {
			return l
		}
		return nil
	}
	if rr := l.relay.Load(); rr != nil && rr.server == from.addr && rr.channel == from.channel {
		return l
	}
	return nil
}

// sendCookieReply answers an initiation with a cookie reply instead of a handshake (cookie.go). The
// reply is shorter than the initiation, so a forged source cannot make it an amplifier.
func (n *Node) sendCookieReply(init []byte, rt route, now time.Duration) {
	n.stats.dropCookie.Add(1)
	m := n.cookies.reply(init, rt, now)
	var buf [relayHeaderLen + cookieReplyLen]byte
	appendCookieReply(buf[relayHeaderLen:relayHeaderLen], &m)
	if err := n.writeVia(buf[:], cookieReplyLen, rt); err != nil {
		n.log.Debug("send cookie reply", zap.Error(err))
	}
}

// receiveCookieReply takes a cookie reply to one of this node's pending initiations: it keeps the
// cookie for the link's next initiations and sends the same initiation again at once with mac2, once
// per attempt. Resending the same bytes costs no DH, and the responder never handled the first copy.
func (n *Node) receiveCookieReply(pkt []byte, rt route) {
	m, err := decodeCookieReply(pkt)
	if err != nil {
		n.stats.dropMalformed.Add(1)
		return
	}
	p := n.index.lookup(m.ReceiverIndex).handshake
	if p == nil {
		n.stats.dropUnknownIndex.Add(1)
		return
	}
	l := p.link
	var buf [relayHeaderLen + initiationLen]byte
	p.mu.Lock()
	if p.hs == nil {
		p.mu.Unlock()
		n.stats.dropUnknownIndex.Add(1)
		return
	}
	c, err := openCookieReply(&l.macs.cookie, &m, p.packet[initiationMAC1At:initiationMAC2At])
	if err != nil {
		p.mu.Unlock()
		n.stats.dropBadMAC.Add(1)
		return
	}
	resend := !p.cookied
	if resend {
		p.cookied = true
		putMAC2(p.packet[:], &c)
		copy(buf[relayHeaderLen:], p.packet[:])
	}
	p.mu.Unlock()
	now := n.clock()
	l.mu.Lock()
	l.cookie, l.cookieAt, l.hasCookie = c, now, true
	l.mu.Unlock()
	n.stats.cookieRepliesIn.Add(1)
	if !resend {
		return
	}
	if err := n.writeVia(buf[:], initiationLen, rt); err != nil {
		n.log.Debug("resend initiation", zap.Stringer("to", rt.addr), zap.Error(err))
	}
}

// handshakeLoop runs handshakes one at a time, off the readers' goroutines: the live queue first
// (rekeys of live links, responses), then initiations that proved their address, then the rest.
func (n *Node) handshakeLoop() {
	for {
		var job handshakeJob
		select {
		case job = <-n.live:
		default:
			select {
			case job = <-n.live:
			case job = <-n.proven:
			default:
				select {
				case <-n.closing:
					return
				case job = <-n.live:
				case job = <-n.proven:
				case job = <-n.handshakes:
				}
			}
		}
		pkt := job.pkt[:job.size]
		if job.kind == kindInitiation {
			n.handleInitiation(pkt, job.from, job.rekey)
		} else {
			n.handleResponse(pkt, job.from)
		}
	}
}

// handleInitiation answers an initiation: it authenticates the initiator, refuses stale timestamps and
// refused keys, and keeps the new session as the link's next one until the initiator confirms it.
// An initiation relayed by a rendezvous must come from the peer the rendezvous introduced on its
// channel; the link made for it then sends along that channel until a direct path is confirmed.
func (n *Node) handleInitiation(pkt []byte, rt route, rekey *Link) {
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
	if rekey != nil && rekey.peer != hs.peer {
		n.refuseHandshake(&n.stats.dropRefused, "initiation on another peer's rekey budget", from)
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

	resp.MAC1 = mac(l.macs.mac1[:], appendResponse(nil, &resp)[:responseMAC1At])
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
