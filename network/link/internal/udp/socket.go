// Package udp is a link node's socket I/O, kept apart from the links as wireguard-go keeps its
// conn.Bind apart from the device: batched reads (recvmmsg) into reusable slots, batched writes
// (sendmmsg), UDP GSO and GRO where the kernel has them, and the socket's buffer sizes. It knows
// datagrams and addresses, nothing of what they carry.
//
// On Linux a Socket hands a run of equal-length packets to the kernel as one datagram with a
// UDP_SEGMENT size (GSO), which the kernel cuts back into the same packets after a single pass
// through its UDP and IP layers; a Reader with UDP_GRO on gets such runs whole, in 64 KiB slots, with
// the segment size, and NextSegment splits them. A kernel that refuses a segmented datagram (EIO,
// EINVAL) turns GSO off for that socket for good. Elsewhere it reads and writes one datagram per
// system call, or uses x/net's WriteBatch.
package udp

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"go.uber.org/zap"
)

// MaxBatch is the most datagrams one WriteBatch writes, and one Reader reads, with one system call.
const MaxBatch = 32

// SlotSize is the longest datagram a Reader reads without UDP GRO, and its buffer for each datagram
// of a batch: a link packet or a STUN message fits. The kernel truncates a longer datagram, which
// Datagram then reports as not ok rather than passing it on cut short. A reader's slots together take
// 64 KiB (512 KiB with UDP GRO, whose slots take coalesced datagrams).
const SlotSize = 2048

// CoalescedSlotSize is a reader's buffer for each datagram when the kernel coalesces them (UDP GRO):
// room for the largest UDP datagram.
const CoalescedSlotSize = 64 << 10

// CoalescedReadBatch is the most datagrams a reader takes with one system call with UDP GRO: up to
// 360 full cells when they arrive coalesced, in 512 KiB of slots. On the testnet (one TCP flow, 3
// hops) 8 did no worse than 16 or 32 (2 MiB) and better than 4; more slots only make the bursts a
// reader hands to the circuits' queues longer.
const CoalescedReadBatch = 8

// Offload says which of UDP GSO (coalesced sends) and UDP GRO (coalesced reads) a socket may use
// where the kernel has them.
type Offload struct {
	GSO, GRO bool
}

// Socket is a UDP socket's I/O for a link node. Open sets it up; it is safe for concurrent use,
// each reading goroutine with a Reader of its own and each batch with a Writer of its own.
type Socket struct {
	conn *net.UDPConn
	out  batchSocket
	gso  atomic.Bool // WriteBatch coalesces with UDP GSO; cleared for good if the kernel refuses it
	gro  bool
	log  *zap.Logger
}

// Open sets c up for batched I/O: its receive and send buffers to buffer bytes (0 or less leaves
// them; a failure is logged, not returned: the socket works with the system's sizes) and the offloads
// want allows and the kernel has. It reads nothing. log (nil for none) hears of buffers left at the
// system's size and of GSO given up.
func Open(c *net.UDPConn, buffer int, want Offload, log *zap.Logger) (*Socket, error) {
	if log == nil {
		log = zap.NewNop()
	}
	out, err := newBatchSocket(c)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	s := &Socket{conn: c, out: out, log: log}
	if buffer > 0 {
		if err := SetBuffers(c, buffer); err != nil {
			log.Warn("socket buffers left at the system's size", zap.Error(err))
		}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	gso, gro := enableOffload(rc, want)
	s.gso.Store(gso)
	s.gro = gro
	return s, nil
}

// GSO reports whether WriteBatch coalesces runs of packets (UDP GSO).
func (s *Socket) GSO() bool { return s.gso.Load() }

// GRO reports whether the socket's readers get coalesced datagrams (UDP GRO).
func (s *Socket) GRO() bool { return s.gro }

// disableGSO stops the socket coalescing sends, for good: the kernel refused a segmented datagram
// (err), so every later one would fail the same way and cost a retry.
func (s *Socket) disableGSO(err error) {
	if s.gso.CompareAndSwap(true, false) {
		s.log.Warn("kernel refuses UDP GSO on this socket: one datagram per packet from now on", zap.Error(err))
	}
}

// Written is what one WriteBatch did: the packets written, the system calls it took and the
// datagrams as the kernel was handed them (a coalesced one counting once).
type Written struct {
	Packets, Calls, Datagrams int
}

// Target is a remote address encoded as the socket's batch writes want it; converting costs an
// allocation, so callers keep one per peer and make another only when the address changes.
func (s *Socket) Target(ap netip.AddrPort) (*Target, error) { return s.out.target(ap) }

// Addr returns the address t was made for.
func (t *Target) Addr() netip.AddrPort { return t.ap }
