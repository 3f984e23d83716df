//go:build !linux

package udp

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn writes several datagrams in one system call where the platform has one. ipv4.PacketConn
// and ipv6.PacketConn both have it; their Message types are the same type.
type batchConn interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchSocket is what a Socket writes batches with.
type batchSocket struct {
	conn batchConn
}

func newBatchSocket(c *net.UDPConn) (batchSocket, error) {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return batchSocket{conn: ipv4.NewPacketConn(c)}, nil
	}
	return batchSocket{conn: ipv6.NewPacketConn(c)}, nil
}

// Target is a remote address as the batch writes want it.
type Target struct {
	ap  netip.AddrPort
	udp *net.UDPAddr
}

func (batchSocket) target(ap netip.AddrPort) (*Target, error) {
	return &Target{ap: ap, udp: net.UDPAddrFromAddrPort(ap)}, nil
}

// Writer is one batch's scratch space for WriteBatch.
type Writer struct {
	ms  [MaxBatch]ipv4.Message
	one [MaxBatch][1][]byte
}

// Init readies w; a Writer is used only after it.
func (w *Writer) Init() {
	for i := range w.ms {
		w.ms[i].Buffers = w.one[i][:]
	}
}

// WriteBatch writes pkts (at most MaxBatch) to t, one datagram each, and reports what it wrote.
func (s *Socket) WriteBatch(w *Writer, pkts [][]byte, t *Target) (Written, error) {
	for i, p := range pkts {
		w.one[i][0] = p
		w.ms[i].Addr = t.udp
	}
	var wr Written
	for wr.Packets < len(pkts) {
		k, err := s.out.conn.WriteBatch(w.ms[wr.Packets:len(pkts)], 0)
		if err != nil {
			return wr, err
		}
		wr.Calls++
		wr.Datagrams += k
		wr.Packets += k
	}
	return wr, nil
}
