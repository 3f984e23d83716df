//go:build linux

package udp

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reader reads the datagrams queued on a socket, up to MaxBatch with one recvmmsg, into
// buffers it owns and reuses. It parses source addresses itself: x/net's ReadBatch allocates a
// net.UDPAddr and its IP for every message, whatever Addr held before. The socket's RawConn drives
// the call, so the goroutine parks in the netpoller while nothing is queued.
//
// With UDP GRO on the socket, the kernel may hand over many datagrams of one sender as one, with
// their segment size in a control message; the slots are then large enough for any datagram
// (CoalescedSlotSize; fewer of them, 512 KiB in all), and the caller splits them (NextSegment).
type Reader struct {
	rc   syscall.RawConn
	recv func(fd uintptr) bool // d.recvmmsg, bound once: a method value made per read would allocate
	n    int                   // the last recvmmsg's results, set inside recv
	err  syscall.Errno

	gro   bool
	slots int // slots in use: MaxBatch, or CoalescedReadBatch with gro
	slot  int // bytes per slot

	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch][unix.SizeofSockaddrInet6]byte // room for either family's sockaddr
	ctrl  [MaxBatch][groCmsgSpace]byte             // with gro only
	bufs  []byte                                   // MaxBatch slots

	zones zoneName
}

// NewReader makes a reader of the socket, for one reading goroutine.
func (s *Socket) NewReader() (*Reader, error) {
	gro := s.gro
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &Reader{rc: rc, gro: gro, slots: MaxBatch, slot: SlotSize}
	if gro {
		d.slots, d.slot = CoalescedReadBatch, CoalescedSlotSize
	}
	d.bufs = make([]byte, d.slots*d.slot)
	d.recv = d.recvmmsg
	for i := range d.slots {
		d.iovs[i].Base = &d.bufs[i*d.slot]
		d.iovs[i].SetLen(d.slot)
		h := &d.hdrs[i].Hdr
		h.Iov = &d.iovs[i]
		h.SetIovlen(1)
		h.Name = &d.names[i][0]
		if gro {
			h.Control = &d.ctrl[i][0]
		}
	}
	return d, nil
}

// Read waits until the socket has datagrams and reads as many as are queued, up to MaxBatch. It
// returns how many; Datagram gives each.
func (d *Reader) Read() (int, error) {
	for i := range d.slots {
		h := &d.hdrs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6 // the kernel overwrites it, and Controllen, with the length used
		if d.gro {
			h.SetControllen(groCmsgSpace)
		}
	}
	d.n, d.err = 0, 0
	if err := d.rc.Read(d.recv); err != nil {
		return 0, err
	}
	if d.err != 0 {
		return 0, os.NewSyscallError("recvmmsg", d.err)
	}
	return d.n, nil
}

// recvmmsg is the RawConn.Read callback. Returning false asks the netpoller to wait for the socket to
// become readable and call it again.
func (d *Reader) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.hdrs[0])), uintptr(d.slots), 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue // not a wait: a datagram may be queued, and the poller would not report it again
		case unix.EAGAIN:
			return false
		}
		d.n, d.err = int(n), errno
		return true
	}
}

// Datagram returns the i-th read of the last batch, its segment size if the kernel coalesced
// several datagrams into it (0 if not), and its source address. ok is false for a read longer than
// its slot, which the kernel truncated (MSG_TRUNC), and for a source address of another family than
// IPv4 or IPv6, which a UDP socket never reports. If the control messages did not fit (MSG_CTRUNC),
// the segment size is lost and the read is taken as one datagram, which the caller should count as
// malformed if it is longer than a datagram can be.
func (d *Reader) Datagram(i int) (read []byte, segSize int, from netip.AddrPort, ok bool) {
	h := &d.hdrs[i]
	read = d.bufs[i*d.slot:][:min(int(h.Len), d.slot)]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return read, 0, netip.AddrPort{}, false
	}
	if d.gro && h.Hdr.Flags&unix.MSG_CTRUNC == 0 {
		segSize = groSegmentSize(d.ctrl[i][:min(int(h.Hdr.Controllen), groCmsgSpace)])
	}
	from, ok = parseSockaddr(d.names[i][:min(int(h.Hdr.Namelen), unix.SizeofSockaddrInet6)], &d.zones)
	return read, segSize, from, ok
}
