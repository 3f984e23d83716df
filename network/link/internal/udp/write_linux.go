//go:build linux

package udp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSocket is what a Socket writes batches with: the socket's RawConn, which drives a raw
// sendmmsg through the netpoller, and the socket's address family, which decides how destination
// addresses are encoded.
type batchSocket struct {
	rc    syscall.RawConn
	inet6 bool
}

func newBatchSocket(c *net.UDPConn) (batchSocket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return batchSocket{}, err
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) { domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN) }); err != nil {
		return batchSocket{}, err
	}
	if serr != nil {
		return batchSocket{}, fmt.Errorf("socket family: %w", serr)
	}
	return batchSocket{rc: rc, inet6: domain == unix.AF_INET6}, nil
}

// Target is a remote address encoded as the socket's family wants it (an IPv4 peer of an IPv6
// socket as an IPv4-mapped address).
type Target struct {
	ap      netip.AddrPort
	name    [unix.SizeofSockaddrInet6]byte
	namelen uint32
}

func (s batchSocket) target(ap netip.AddrPort) (*Target, error) {
	t := &Target{ap: ap}
	var ok bool
	t.namelen, ok = putSockaddr(&t.name, ap, s.inet6)
	if !ok {
		return nil, fmt.Errorf("%v: %w", ap, unix.EAFNOSUPPORT)
	}
	return t, nil
}

// Writer is one batch's scratch space for the sendmmsg that writes it: a message per datagram,
// which gathers its packets with an iovec each, so packets are never copied together. A message
// that carries several packets has a UDP_SEGMENT control message, and the kernel cuts it back into
// them after one pass through its UDP and IP layers.
type Writer struct {
	hdrs [MaxBatch]unix.Mmsghdr
	iovs [MaxBatch]unix.Iovec
	ctrl [MaxBatch][segmentCmsgSpace]byte
	ends [MaxBatch]int // message j carries packets ends[j-1] (or 0) up to ends[j]

	send     func(fd uintptr) bool // w.sendmmsg, bound once: a method value made per write would allocate
	from, to int                   // the messages the write in progress is to send
	n        int                   // the last sendmmsg's results, set inside send
	err      syscall.Errno
}

// Init readies w; a Writer is used only after it.
func (w *Writer) Init() {
	w.send = w.sendmmsg
}

// build lays pkts out as messages to t, coalescing runs of them (coalesceRun) if gso, and returns
// how many messages it made.
func (w *Writer) build(pkts [][]byte, t *Target, gso bool) int {
	m := 0
	for i := 0; i < len(pkts); m++ {
		k := 1
		if gso {
			k = CoalesceRun(pkts[i:])
		}
		for j := i; j < i+k; j++ {
			w.iovs[j].Base = unsafe.SliceData(pkts[j])
			w.iovs[j].SetLen(len(pkts[j]))
		}
		h := &w.hdrs[m].Hdr
		h.Name, h.Namelen = &t.name[0], t.namelen
		h.Iov = &w.iovs[i]
		h.SetIovlen(k)
		if k > 1 {
			putSegmentSize(&w.ctrl[m], len(pkts[i]))
			h.Control = &w.ctrl[m][0]
			h.SetControllen(unix.CmsgSpace(2))
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		i += k
		w.ends[m] = i
	}
	return m
}

// packets returns how many packets message j carries.
func (w *Writer) packets(j int) int {
	if j == 0 {
		return w.ends[0]
	}
	return w.ends[j] - w.ends[j-1]
}

// WriteBatch writes pkts (at most MaxBatch) to t in order, as few datagrams as UDP GSO allows, with
// w as scratch space, and reports what it wrote. If the kernel refuses a segmented datagram, the
// socket gives GSO up for good and writes the rest one packet per datagram.
func (s *Socket) WriteBatch(w *Writer, pkts [][]byte, t *Target) (Written, error) {
	var wr Written
	for wr.Packets < len(pkts) {
		gso := s.gso.Load()
		msgs := w.build(pkts[wr.Packets:], t, gso)
		sent, err := s.writeMsgs(w, msgs, &wr)
		if sent > 0 {
			wr.Packets += w.ends[sent-1]
		}
		if err == nil {
			continue
		}
		if gso && w.packets(sent) > 1 && refusesGSO(err) {
			s.disableGSO(err)
			continue
		}
		return wr, err
	}
	return wr, nil
}

// writeMsgs writes the first msgs messages of w, with as many sendmmsg calls as the kernel needs,
// counts them in wr, and returns how many it wrote.
func (s *Socket) writeMsgs(w *Writer, msgs int, wr *Written) (int, error) {
	sent := 0
	for sent < msgs {
		w.from, w.to = sent, msgs
		w.n, w.err = 0, 0
		if err := s.out.rc.Write(w.send); err != nil {
			return sent, err
		}
		if w.err != 0 {
			return sent, os.NewSyscallError("sendmmsg", w.err)
		}
		wr.Calls++
		wr.Datagrams += w.n
		sent += w.n
	}
	return sent, nil
}

// sendmmsg is the RawConn.Write callback. Returning false asks the netpoller to wait until the
// socket can take more and call it again.
func (w *Writer) sendmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.from])), uintptr(w.to-w.from), 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.n, w.err = int(n), errno
		return true
	}
}
