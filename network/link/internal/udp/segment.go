package udp

// Limits of one datagram that the kernel segments (UDP GSO): Linux refuses more segments, and no
// IPv4 datagram carries more payload.
const (
	MaxSegments       = 64
	MaxSegmentedBytes = 65507
)

// CoalesceRun returns how many packets from the start of pkts can leave as one datagram that the
// kernel cuts into segments of the first packet's length: a run of packets of that length, ended by
// one shorter packet if there is one, within the kernel's limits. The peer receives them as the same
// separate datagrams, in the same order.
func CoalesceRun(pkts [][]byte) int {
	size := len(pkts[0])
	if size == 0 {
		return 1
	}
	k, total := 1, size
	for k < len(pkts) && k < MaxSegments {
		l := len(pkts[k])
		if l > size || total+l > MaxSegmentedBytes {
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

// NextSegment splits the first datagram off what the kernel read: with segment size size, the
// coalesced datagrams each have that length but the last, which may be shorter; with size 0 (not
// coalesced) it is one datagram. An empty read is one empty datagram.
func NextSegment(read []byte, size int) (dgram, rest []byte) {
	if size <= 0 || size >= len(read) {
		return read, nil
	}
	return read[:size], read[size:]
}
