//go:build !linux

package udp

import (
	"net"
	"net/netip"
)

// Reader reads one datagram per system call where recvmmsg is not available.
type Reader struct {
	conn *net.UDPConn
	size int
	from netip.AddrPort
	buf  [SlotSize + 1]byte // the spare byte shows a datagram longer than a slot
}

// NewReader makes a reader of the socket, for one reading goroutine; UDP GRO is Linux's, never on
// here.
func (s *Socket) NewReader() (*Reader, error) {
	return &Reader{conn: s.conn}, nil
}

// Read waits for one datagram and reads it.
func (d *Reader) Read() (int, error) {
	size, from, err := d.conn.ReadFromUDPAddrPort(d.buf[:])
	if err != nil {
		return 0, err
	}
	d.size, d.from = size, from
	return 1, nil
}

// Datagram returns the datagram of the last read, a segment size of 0 (never coalesced here), and
// its source address; ok is false for one longer than a slot, which is treated as truncated, as on
// Linux.
func (d *Reader) Datagram(int) (read []byte, segSize int, from netip.AddrPort, ok bool) {
	if d.size > SlotSize {
		return d.buf[:SlotSize], 0, netip.AddrPort{}, false
	}
	return d.buf[:d.size], 0, d.from, true
}
