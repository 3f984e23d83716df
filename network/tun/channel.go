package tun

import (
	"fmt"
	"os"
	"sync"
)

// ChannelBatchSize is the BatchSize of a Channel: more than one, so that the batch paths of the
// code under test run.
const ChannelBatchSize = 16

// channelQueue is how many packets each direction of a Channel holds before senders block.
const channelQueue = 64

// Channel is an in-memory Device for unit tests: the test plays the kernel through Inbound and
// Outbound. It copies every packet (a test double has no need to be fast) and works on every OS.
type Channel struct {
	// Inbound takes packets for Read to return, as if the kernel had routed them into the device.
	// It is never closed; a test that may send after Close should select on Done too.
	Inbound chan<- []byte
	// Outbound yields a copy of every packet written. It is never closed.
	Outbound <-chan []byte

	in     chan []byte
	out    chan []byte
	mtu    int
	closed chan struct{}
	once   sync.Once
}

// NewChannel returns a Channel with MTU mtu; Read refuses packets longer than that, as the kernel
// would never deliver one.
func NewChannel(mtu int) *Channel {
	in := make(chan []byte, channelQueue)
	out := make(chan []byte, channelQueue)
	return &Channel{Inbound: in, Outbound: out, in: in, out: out, mtu: mtu, closed: make(chan struct{})}
}

// Read waits for a packet on Inbound, then takes whatever else is already queued, up to len(bufs).
func (c *Channel) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("tun: read: %d sizes for %d buffers", len(sizes), len(bufs))
	}
	if c.isClosed() {
		return 0, fmt.Errorf("tun: read channel: %w", os.ErrClosed)
	}
	var pkt []byte
	select {
	case pkt = <-c.in:
	case <-c.closed:
		return 0, fmt.Errorf("tun: read channel: %w", os.ErrClosed)
	}
	for n := 0; ; n++ {
		if len(pkt) > c.mtu || len(pkt) > len(bufs[n])-offset {
			return n, fmt.Errorf("tun: read channel: %d-byte packet exceeds MTU %d or buffer %d", len(pkt), c.mtu, len(bufs[n])-offset)
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		if n+1 == len(bufs) {
			return n + 1, nil
		}
		select {
		case pkt = <-c.in:
		default:
			return n + 1, nil
		}
	}
}

// Write copies each packet to Outbound, blocking while Outbound is full, until Close.
func (c *Channel) Write(bufs [][]byte, offset int) (int, error) {
	if c.isClosed() {
		return 0, fmt.Errorf("tun: write channel: %w", os.ErrClosed)
	}
	for i, b := range bufs {
		pkt := append([]byte(nil), b[offset:]...)
		select {
		case c.out <- pkt:
		case <-c.closed:
			return i, fmt.Errorf("tun: write channel: %w", os.ErrClosed)
		}
	}
	return len(bufs), nil
}

// BatchSize returns ChannelBatchSize.
func (c *Channel) BatchSize() int { return ChannelBatchSize }

// MTU returns the mtu given to NewChannel.
func (c *Channel) MTU() int { return c.mtu }

// Name returns "channel".
func (c *Channel) Name() string { return "channel" }

// Done is closed by Close.
func (c *Channel) Done() <-chan struct{} { return c.closed }

// isClosed reports Close before a select that could otherwise pick a ready packet over it.
func (c *Channel) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Close makes pending and later Reads and Writes return os.ErrClosed. It never fails.
func (c *Channel) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var _ Device = (*Channel)(nil)
