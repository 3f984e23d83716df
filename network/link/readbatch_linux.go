//go:build linux

package link

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// datagramReader reads the datagrams queued on a socket, up to readBatchSize with one recvmmsg, into
// buffers it owns and reuses. It parses source addresses itself: x/net's ReadBatch allocates a
// net.UDPAddr and its IP for every message, whatever Addr held before. The socket's RawConn drives
// the call, so the goroutine parks in the netpoller while nothing is queued.
type datagramReader struct {
	rc   syscall.RawConn
	recv func(fd uintptr) bool // d.recvmmsg, bound once: a method value made per read would allocate
	n    int                   // the last recvmmsg's results, set inside recv
	err  syscall.Errno

	hdrs  [readBatchSize]unix.Mmsghdr
	iovs  [readBatchSize]unix.Iovec
	names [readBatchSize][unix.SizeofSockaddrInet6]byte // room for either family's sockaddr
	bufs  [readBatchSize][readSlotSize]byte

	zones zoneName
}

func newDatagramReader(c *net.UDPConn) (*datagramReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &datagramReader{rc: rc}
	d.recv = d.recvmmsg
	for i := range d.hdrs {
		d.iovs[i].Base = &d.bufs[i][0]
		d.iovs[i].SetLen(readSlotSize)
		h := &d.hdrs[i].Hdr
		h.Iov = &d.iovs[i]
		h.SetIovlen(1)
		h.Name = &d.names[i][0]
	}
	return d, nil
}

// read waits until the socket has datagrams and reads as many as are queued, up to readBatchSize. It
// returns how many; datagram gives each.
func (d *datagramReader) read() (int, error) {
	for i := range d.hdrs {
		d.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6 // the kernel overwrites it with the length used
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
func (d *datagramReader) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.hdrs[0])), readBatchSize, 0, 0, 0)
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

// datagram returns the i-th datagram of the last read and its source address. ok is false for a
// datagram longer than its slot, which the kernel truncated (MSG_TRUNC), and for a source address of
// another family than IPv4 or IPv6, which a UDP socket never reports.
func (d *datagramReader) datagram(i int) (pkt []byte, from netip.AddrPort, ok bool) {
	h := &d.hdrs[i]
	pkt = d.bufs[i][:min(int(h.Len), readSlotSize)]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return pkt, netip.AddrPort{}, false
	}
	from, ok = parseSockaddr(d.names[i][:min(int(h.Hdr.Namelen), unix.SizeofSockaddrInet6)], &d.zones)
	return pkt, from, ok
}

// parseSockaddr decodes a sockaddr_in or sockaddr_in6 as the kernel writes it (family in host byte
// order, port and address in network byte order) without allocating.
func parseSockaddr(b []byte, zones *zoneName) (netip.AddrPort, bool) {
	if len(b) < 4 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), true
	case unix.AF_INET6:
		if len(b) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if scope := binary.NativeEndian.Uint32(b[24:28]); scope != 0 {
			a = a.WithZone(zones.name(scope))
		}
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// zoneName names IPv6 scopes (interface indices) as the standard library does: by interface name, or
// by number if there is no such interface. It remembers the last one, so a link-local peer costs an
// interface lookup only when its scope changes.
type zoneName struct {
	index uint32
	zone  string
}

func (z *zoneName) name(index uint32) string {
	if index != z.index { // never 0: only scoped addresses are named
		z.index = index
		if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
			z.zone = ifi.Name
		} else {
			z.zone = strconv.FormatUint(uint64(index), 10)
		}
	}
	return z.zone
}
