package link

import "net/netip"

// Limits of one datagram that the kernel segments (UDP GSO): Linux refuses more segments, and no
// IPv4 datagram carries more payload.
const (
	maxSegments       = 64
	maxSegmentedBytes = 65507
)

// coalescedSlotSize is a reader's buffer for each datagram when the kernel coalesces them (UDP GRO):
// room for the largest UDP datagram.
const coalescedSlotSize = 64 << 10

// coalescedReadBatch is the most datagrams a reader takes with one system call with UDP GRO: up to
// 360 full cells when they arrive coalesced, in 512 KiB of slots. On the testnet (one TCP flow, 3
// hops) 8 did no worse than 16 or 32 (2 MiB) and better than 4; more slots only make the bursts a
// reader hands to the circuits' queues longer.
const coalescedReadBatch = 8

// coalesceRun returns how many packets from the start of pkts can leave as one datagram that the
// kernel cuts into segments of the first packet's length: a run of packets of that length, ended by
// one shorter packet if there is one, within the kernel's limits. The peer receives them as the same
// separate datagrams, in the same order.
func coalesceRun(pkts [][]byte) int {
	size := len(pkts[0])
	if size == 0 {
		return 1
	}
	k, total := 1, size
	for k < len(pkts) && k < maxSegments {
		l := len(pkts[k])
		if l > size || total+l > maxSegmentedBytes {
			break
		}
		k++
		total += l
		if l < size {
			break // only the last segment may be shorter
		}
	}
	return k
}

// nextSegment splits the first datagram off what the kernel read: with segment size size, the
// coalesced datagrams each have that length but the last, which may be shorter; with size 0 (not
// coalesced) it is one datagram. An empty read is one empty datagram.
func nextSegment(read []byte, size int) (dgram, rest []byte) {
	if size <= 0 || size >= len(read) {
		return read, nil
	}
	return read[:size], read[size:]
}

// handleRead hands every datagram of one kernel read to handlePacket in order: the read itself, or
// each segment of a coalesced one (segSize > 0). Each is handled, or dropped and counted, on its
// own, so a bad one costs its neighbours nothing. A datagram longer than readSlotSize is counted as
// malformed, as it is when the kernel truncates it into a slot of that size without UDP GRO.
func (n *Node) handleRead(r *reader, read []byte, segSize int, from netip.AddrPort) {
	for {
		dgram, rest := nextSegment(read, segSize)
		if len(dgram) > readSlotSize {
			n.dropUnreadable(dgram)
		} else {
			n.handlePacket(r, dgram, from)
		}
		if len(rest) == 0 {
			return
		}
		read = rest
	}
}
