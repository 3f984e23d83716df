package udp

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// SetBuffers sets the socket's receive and send buffers to size bytes: with the FORCE options
// first, which a process with CAP_NET_ADMIN may use past net.core.rmem_max/wmem_max, then with the
// plain ones, which the kernel caps at those limits.
func SetBuffers(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], size) == nil {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], size); err != nil && serr == nil {
				serr = fmt.Errorf("setsockopt %d: %w", o[1], err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Buffers returns the socket's receive and send buffer sizes as the kernel reports them (twice
// what was asked for: the kernel counts its bookkeeping too).
func Buffers(c *net.UDPConn) (rcv, snd int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var e1, e2 error
	err = rc.Control(func(fd uintptr) {
		rcv, e1 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, e2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	if err == nil {
		err = e1
	}
	if err == nil {
		err = e2
	}
	return rcv, snd, err
}
