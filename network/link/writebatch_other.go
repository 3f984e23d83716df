//go:build !linux

package link

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

// batchSocket is what a node writes batches with.
type batchSocket struct {
	conn batchConn
}

func newBatchSocket(c *net.UDPConn) (batchSocket, error) {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		return batchSocket{conn: ipv4.NewPacketConn(c)}, nil
	}
	return batchSocket{conn: ipv6.NewPacketConn(c)}, nil
}

// udpTarget is a remote address as the batch writes want it.
type udpTarget struct {
	ap  netip.AddrPort
	udp *net.UDPAddr
}

func (batchSocket) target(ap netip.AddrPort) (*udpTarget, error) {
	return &udpTarget{ap: ap, udp: net.UDPAddrFromAddrPort(ap)}, nil
}

// batchWriter is one batch's scratch space for WriteBatch.
type batchWriter struct {
	ms  [MaxBatch]ipv4.Message
	one [MaxBatch][1][]byte
}

func (w *batchWriter) init() {
	for i := range w.ms {
		w.ms[i].Buffers = w.one[i][:]
	}
}

// writeBatch writes pkts to t, one datagram each, and returns how many were written.
func (n *Node) writeBatch(w *batchWriter, pkts [][]byte, t *udpTarget) (int, error) {
	for i, p := range pkts {
		w.one[i][0] = p
		w.ms[i].Addr = t.udp
	}
	written := 0
	for written < len(pkts) {
		k, err := n.out.conn.WriteBatch(w.ms[written:len(pkts)], 0)
		if err != nil {
			return written, err
		}
		n.stats.writeCalls.Add(1)
		n.stats.writeMsgs.Add(uint64(k))
		written += k
	}
	return written, nil
}
