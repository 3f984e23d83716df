package link

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MaxBatch is the most messages one SendBatch writes with one system call.
const MaxBatch = 32

// batchConn writes several datagrams in one system call (sendmmsg on Linux). ipv4.PacketConn and
// ipv6.PacketConn both have it; their Message types are the same type.
type batchConn interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c *net.UDPConn) batchConn {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return ipv4.NewPacketConn(c)
	}
	return ipv6.NewPacketConn(c)
}

// batchBuf is scratch space for sealing one batch.
type batchBuf struct {
	pkts [MaxBatch]packetBuf
	ms   [MaxBatch]ipv4.Message
	one  [MaxBatch][1][]byte
}

func newBatchBuf() any {
	b := new(batchBuf)
	for i := range b.ms {
		b.ms[i].Buffers = b.one[i][:]
	}
	return b
}

// udpTarget is a remote address in the two forms the socket calls want, so that a batch does not
// convert (and allocate) it again.
type udpTarget struct {
	ap  netip.AddrPort
	udp *net.UDPAddr
}

// target returns the link's remote address as a *net.UDPAddr, converting it only when it changed.
func (l *Link) target() *net.UDPAddr {
	ap := *l.remote.Load()
	if t := l.udpTarget.Load(); t != nil && t.ap == ap {
		return t.udp
	}
	t := &udpTarget{ap: ap, udp: net.UDPAddrFromAddrPort(ap)}
	l.udpTarget.Store(t)
	return t.udp
}

// SendBatch seals each of msgs into its own datagram and writes them together, with one system call
// per MaxBatch messages where the platform allows. It returns how many messages were sent; on an error
// the rest were not. The rules of Send apply to each message.
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
	b := n.batches.Get().(*batchBuf)
	defer n.batches.Put(b)
	to := l.target()
	var bytes uint64
	for i, m := range msgs {
		p := &b.pkts[i]
		b.one[i][0] = s.seal(p.data[:], &p.nonce, first+uint64(i), m)
		b.ms[i].Addr = to
		bytes += uint64(len(b.one[i][0]))
	}
	written := 0
	for written < len(msgs) {
		k, err := n.batch.WriteBatch(b.ms[written:len(msgs)], 0)
		if err != nil {
			if n.isClosing() {
				return written, ErrClosed
			}
			return written, fmt.Errorf("link: send batch: %w", err)
		}
		written += k
	}
	n.stats.packetsOut.Add(uint64(written))
	n.stats.bytesOut.Add(bytes)
	l.lastSent.Store(int64(now))
	var delivered uint64
	for _, m := range msgs {
		if len(m) > 0 {
			delivered++
		}
	}
	n.stats.messagesOut.Add(delivered)
	return written, nil
}
