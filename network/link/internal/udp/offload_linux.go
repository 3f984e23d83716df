//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enableOffload asks the kernel for what the socket supports of UDP GSO (sending datagrams the
// kernel segments, since Linux 4.18) and UDP GRO (receiving datagrams it coalesced, since 5.0), as
// far as want allows, and reports what it got. GSO needs no option, only a kernel that knows
// UDP_SEGMENT; whether the route's device can do it shows at the first send (refusesGSO).
func enableOffload(rc syscall.RawConn, want Offload) (gso, gro bool) {
	err := rc.Control(func(fd uintptr) {
		if want.GSO {
			_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gso = err == nil
		}
		// Set either way: a socket handed to Open with UDP_GRO already on would otherwise deliver
		// coalesced datagrams to readers with small slots.
		on := 0
		if want.GRO {
			on = 1
		}
		gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, on) == nil && want.GRO
	})
	if err != nil {
		return false, false
	}
	return gso, gro
}

// refusesGSO tells whether a failed write of a segmented datagram means the kernel cannot segment
// on this socket's route: EIO when the device has no checksum offload, which UDP_SEGMENT needs;
// EINVAL when it will not take the segment size (a path MTU below it, for one).
func refusesGSO(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)
}

// segmentCmsgSpace is the room a UDP_SEGMENT control message takes: a header and a uint16.
const segmentCmsgSpace = unix.SizeofCmsghdr + 8

// putSegmentSize writes a UDP_SEGMENT control message asking the kernel to cut the datagram into
// segments of size bytes.
func putSegmentSize(b *[segmentCmsgSpace]byte, size int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.SizeofCmsghdr:], uint16(size))
}

// groCmsgSpace is the room for the control messages of one read: a UDP_GRO message (an int) takes
// 24 bytes on 64-bit systems; the rest is margin for options the socket's owner may have set.
const groCmsgSpace = 64

// groSegmentSize returns the segment size of a coalesced datagram from its control messages, or 0
// if it was not coalesced.
func groSegmentSize(control []byte) int {
	for len(control) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(control)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4: // the kernel writes an int
				return int(int32(binary.NativeEndian.Uint32(data)))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
			return 0
		}
		control = rest
	}
	return 0
}
