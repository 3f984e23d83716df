//go:build !linux

package link

import (
	"net"
	"net/netip"
)

// datagramReader reads one datagram per system call where recvmmsg is not available.
type datagramReader struct {
	conn *net.UDPConn
	size int
	from netip.AddrPort
	buf  [readSlotSize + 1]byte // the spare byte shows a datagram longer than a slot
}

// newDatagramReader makes a reader for c; UDP GRO (gro) is Linux's, never on here.
func newDatagramReader(c *net.UDPConn, gro bool) (*datagramReader, error) {
	return &datagramReader{conn: c}, nil
}

// read waits for one datagram and reads it.
func (d *datagramReader) read() (int, error) {
	size, from, err := d.conn.ReadFromUDPAddrPort(d.buf[:])
	if err != nil {
		return 0, err
	}
	d.size, d.from = size, from
	return 1, nil
}

// datagram returns the datagram of the last read, a segment size of 0 (never coalesced here), and
// its source address; ok is false for one longer than a slot, which is treated as truncated, as on
// Linux.
func (d *datagramReader) datagram(int) (read []byte, segSize int, from netip.AddrPort, ok bool) {
	if d.size > readSlotSize {
		return d.buf[:readSlotSize], 0, netip.AddrPort{}, false
	}
	return d.buf[:d.size], 0, d.from, true
}
