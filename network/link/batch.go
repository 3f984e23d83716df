package link

import (
	"fmt"

	"github.com/meshvpn/meshvpn/network/link/internal/udp"
)

// MaxBatch is the most messages one SendBatch writes with one system call.
const MaxBatch = udp.MaxBatch

// batchBuf is scratch space for sealing and writing one batch.
type batchBuf struct {
	pkts   [MaxBatch]packetBuf
	sealed [MaxBatch][]byte // the packets sealed into pkts
	w      udp.Writer       // the platform's state for writing them
}

func newBatchBuf() any {
	b := new(batchBuf)
	b.w.Init()
	return b
}

// target returns where rt sends in the form the platform's batch writes want, converting it only when
// it changed, so that a batch does not convert (and allocate) it again. A direct route's target is
// kept on the link, a relayed one's on its relay route.
func (l *Link) target(rt route) (*udp.Target, error) {
	cache := &l.udpTarget
	if rt.channel != 0 {
		if r := l.relay.Load(); r != nil && r.channel == rt.channel {
			cache = &r.target
		}
	}
	if t := cache.Load(); t != nil && t.Addr() == rt.addr {
		return t, nil
	}
	t, err := l.node.sock.Target(rt.addr)
	if err != nil {
		return nil, err
	}
	cache.Store(t)
	return t, nil
}

// SendBatch seals each of msgs into its own datagram and writes them together, with one system call
// per MaxBatch messages where the platform allows. On Linux, consecutive packets of equal length
// (and a shorter one ending such a run) leave as one UDP GSO datagram that the kernel segments, so
// a batch of full cells costs the kernel one trip through its UDP and IP layers rather than one per
// cell; the peer receives the same datagrams in the same order either way. It returns how many
// messages were sent; on an error the rest were not. The rules of Send apply to each message.
func (l *Link) SendBatch(msgs [][]byte) (int, error) {
	sent := 0
	for len(msgs) > 0 {
		k := min(len(msgs), MaxBatch)
		n, err := l.sendBatch(msgs[:k])
		sent += n
		if err != nil {
			return sent, err
		}
		msgs = msgs[k:]
	}
	return sent, nil
}

func (l *Link) sendBatch(msgs [][]byte) (int, error) {
	for _, m := range msgs {
		if len(m) > MaxMessage {
			return 0, fmt.Errorf("%w: %d bytes", ErrMessageTooLong, len(m))
		}
	}
	if l.closed.Load() {
		return 0, ErrClosed
	}
	n := l.node
	now := n.clock()
	s := l.current.Load()
	if s == nil || s.expired(now, n.times.rejectAfter) {
		n.kickTimers()
		return 0, ErrNoSession
	}
	first := s.sendCounter.Add(uint64(len(msgs))) - uint64(len(msgs))
	if first+uint64(len(msgs)) > rejectAfterMessages {
		n.kickTimers()
		return 0, ErrNoSession
	}
	if first <= rekeyAfterMessages && rekeyAfterMessages < first+uint64(len(msgs)) {
		n.kickTimers()
	}
	rt := l.route()
	to, err := l.target(rt)
	if err != nil {
		return 0, fmt.Errorf("link: send batch: %w", err)
	}
	b := n.batches.Get().(*batchBuf)
	defer n.batches.Put(b)
	pkts := b.sealed[:len(msgs)]
	for i, m := range msgs {
		p := &b.pkts[i]
		pkts[i] = s.seal(p.data[relayHeaderLen:], &p.nonce, first+uint64(i), m, 0)
		if rt.channel != 0 {
			putRelayHeader(p.data[:], rt.channel)
			pkts[i] = p.data[:relayHeaderLen+len(pkts[i])]
		}
	}
	wr, err := n.sock.WriteBatch(&b.w, pkts, to)
	written := wr.Packets
	n.stats.writeCalls.Add(uint64(wr.Calls))
	n.stats.writeMsgs.Add(uint64(wr.Datagrams))
	var bytes, delivered uint64
	for i, p := range pkts[:written] {
		bytes += uint64(len(p))
		if len(msgs[i]) > 0 {
			delivered++
		}
	}
	n.stats.packetsOut.Add(uint64(written))
	n.stats.bytesOut.Add(bytes)
	n.stats.messagesOut.Add(delivered)
	if written > 0 {
		l.lastSent.Store(int64(now))
	}
	if err != nil {
		if n.isClosing() {
			return written, ErrClosed
		}
		return written, fmt.Errorf("link: send batch: %w", err)
	}
	return written, nil
}
