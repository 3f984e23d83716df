package link

import "fmt"

// Send seals msg into one datagram and writes it to the peer. It is safe for concurrent use and
// allocates nothing. It returns ErrClosed once the link is closed, ErrNoSession while a rekey is
// overdue, and an error wrapping ErrMessageTooLong for a message longer than MaxMessage. An empty
// message is a keepalive: it proves the link alive but is not delivered.
func (l *Link) Send(msg []byte) error {
	if len(msg) > MaxMessage {
		return fmt.Errorf("%w: %d bytes", ErrMessageTooLong, len(msg))
	}
	return l.send(msg)
}

func (l *Link) send(msg []byte) error { return l.sendVia(msg, l.route(), 0) }

// sendVia seals msg with flags (0, or flagControl) and writes it along rt.
func (l *Link) sendVia(msg []byte, rt route, flags byte) error {
	if l.closed.Load() {
		return ErrClosed
	}
	n := l.node
	now := n.clock()
	s := l.current.Load()
	if s == nil || s.expired(now, n.times.rejectAfter) {
		n.kickTimers()
		return ErrNoSession
	}
	counter := s.sendCounter.Add(1) - 1
	if counter >= rejectAfterMessages {
		n.kickTimers()
		return ErrNoSession
	}
	if counter == rekeyAfterMessages {
		n.kickTimers()
	}
	b := n.bufs.Get().(*packetBuf)
	pkt := s.seal(b.data[relayHeaderLen:], &b.nonce, counter, msg, flags)
	err := n.writeVia(b.data[:], len(pkt), rt)
	n.bufs.Put(b)
	if err != nil {
		if err == ErrClosed {
			return err
		}
		return fmt.Errorf("link: send: %w", err)
	}
	l.lastSent.Store(int64(now))
	if len(msg) > 0 {
		n.stats.messagesOut.Add(1)
	}
	return nil
}

// kickTimers asks the timer goroutine for a pass now rather than at its next tick.
func (n *Node) kickTimers() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}
