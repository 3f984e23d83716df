package link

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"go.uber.org/zap"
)

// Dial returns a usable link to the node with static key peer at addr, making a handshake if there is
// no link yet. It returns the existing link if there is one (so a second Dial to a peer gets the same
// link); addr is then used only if that link has never been usable. The initiation is retransmitted
// every HandshakeRetry (with jitter) until a response arrives or ctx ends; when ctx ends first, the
// error wraps ctx.Err() and no link is left behind.
func (n *Node) Dial(ctx context.Context, addr netip.AddrPort, peer keys.StaticPublic) (*Link, error) {
	if !addr.IsValid() {
		return nil, fmt.Errorf("link: dial: invalid address %v", addr)
	}
	if peer == n.local.pub {
		return nil, errors.New("link: dial: peer key is this node's own key")
	}
	addr = unmap(addr)
	l, usable, start, err := n.enlist(peer, addr)
	if err != nil || usable {
		return l, err
	}
	return n.await(ctx, l, start)
}

// enlist returns the link to peer, made (pointed at addr) if there is none. If it has a usable
// session, usable says so. Otherwise the caller is now one of its dialers and must await it; start
// says no handshake is under way, so that await starts one.
func (n *Node) enlist(peer keys.StaticPublic, addr netip.AddrPort) (l *Link, usable, start bool, err error) {
	for {
		if n.isClosing() {
			return nil, false, false, ErrClosed
		}
		if l, err = n.linkFor(peer, addr); err != nil {
			return nil, false, false, err
		}
		l.mu.Lock()
		if l.closed.Load() {
			// Closed between the lookup and the lock (an abandoned dial, a dead peer): make a new one.
			l.mu.Unlock()
			continue
		}
		if l.current.Load() != nil {
			l.mu.Unlock()
			return l, true, false, nil
		}
		l.dialers++
		start = l.pending == nil
		if !l.established.Load() {
			l.remote.Store(&addr)
		}
		l.mu.Unlock()
		return l, false, start, nil
	}
}

// await waits, as one of l's dialers, for l to have a usable session.
func (n *Node) await(ctx context.Context, l *Link, start bool) (*Link, error) {
	defer n.undial(l)
	if start {
		if err := n.initiate(l, nil); err != nil {
			return nil, fmt.Errorf("link: dial %s: %w", l.RemoteAddr(), err)
		}
	}
	for {
		l.mu.Lock()
		usable, changed := l.current.Load() != nil, l.changed
		l.mu.Unlock()
		if usable {
			return l, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			n.stats.handshakesFailed.Add(1)
			return nil, fmt.Errorf("link: dial %s: %w", l.RemoteAddr(), ctx.Err())
		case <-l.done:
			return nil, ErrClosed
		case <-n.closing:
			return nil, ErrClosed
		}
	}
}

// undial ends one Dial's interest in l. A link that was never usable and that nobody waits for any
// more, and that has no responder session on the way either, is discarded.
func (n *Node) undial(l *Link) {
	l.mu.Lock()
	l.dialers--
	abandon := l.dialers == 0 && !l.established.Load() && l.next == nil
	l.mu.Unlock()
	if abandon {
		l.shutdown(ErrClosed)
	}
}

// initiate starts a handshake on l, replacing the pending one if it is still expect (a retransmission)
// and doing nothing if another handshake has started meanwhile. The DH work is done before any lock is
// taken.
func (n *Node) initiate(l *Link, expect *pendingHandshake) error {
	var eph [32]byte
	if _, err := rand.Read(eph[:]); err != nil {
		return fmt.Errorf("link: ephemeral key: %w", err)
	}
	var rekey uint32
	if cur := l.current.Load(); cur != nil {
		rekey = cur.remoteIndex
	}
	ts := n.stamps.stamp(n.cfg.Now())
	idx := n.index.reserve()
	hs, msg, err := newInitiatorHandshake(n.local, l.peer, idx, rekey, ts, eph)
	clear(eph[:])
	if err != nil {
		n.index.release(idx)
		return err
	}
	p := &pendingHandshake{link: l, index: idx, hs: hs}
	now := n.clock()
	var cookie *[macLen]byte
	l.mu.Lock()
	if l.hasCookie && now-l.cookieAt < cookieLifetime {
		c := l.cookie
		cookie = &c
	}
	l.mu.Unlock()
	sealInitiation(appendInitiation(p.packet[:0], &msg), &l.macs.mac1, cookie)
	var buf [relayHeaderLen + initiationLen]byte
	copy(buf[relayHeaderLen:], p.packet[:])
	l.mu.Lock()
	if l.closed.Load() || l.pending != expect {
		l.mu.Unlock()
		n.index.release(idx)
		hs.wipe()
		if l.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	old := l.pending
	l.pending = p
	p.nextRetry = now + jitter(n.cfg.HandshakeRetry)
	n.index.set(idx, indexEntry{handshake: p})
	to := l.route()
	l.mu.Unlock()
	n.dropPending(old)

	n.stats.handshakesInitiated.Add(1)
	if err := n.writeVia(buf[:], initiationLen, to); err != nil {
		// The retransmission timer tries again; a dial fails only when its context ends.
		n.log.Debug("send initiation", zap.Stringer("to", to.addr), zap.Error(err))
	}
	return nil
}

// dropPending forgets a handshake attempt and its ephemeral secret.
func (n *Node) dropPending(p *pendingHandshake) {
	if p == nil {
		return
	}
	n.index.removeHandshake(p)
	p.mu.Lock()
	if p.hs != nil {
		p.hs.wipe()
		p.hs = nil
	}
	p.mu.Unlock()
}

// jitter adds up to a third to d, so that peers that lost the same packet do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d + mrand.N(d/3+1)
}
