package tun

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
)

// Writer hands packets to a Device from any goroutine. One goroutine writes whatever has queued up in
// one Write call, so that the device can coalesce a flow's segments (the wireguard backend does GRO)
// instead of the kernel taking each packet alone; at low load each packet is written at once, nothing
// waits to fill a batch. The queue is bounded: when the device falls behind, packets are dropped and
// counted rather than buffered without end.
type Writer struct {
	dev    PacketWriter
	queue  chan []byte
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	drops  atomic.Uint64
	failed atomic.Uint64
}

const (
	writerQueue = 256 // packets waiting for the writer
	writerBatch = 64  // packets in one Write
)

// ErrQueueFull is returned by Write when the device is too far behind.
var ErrQueueFull = errors.New("tun: write queue full")

// PacketWriter is the part of a Device a Writer uses.
type PacketWriter interface {
	Write(bufs [][]byte, offset int) (int, error)
}

// NewWriter starts a writer for dev. Its buffers are big enough for the device to coalesce into.
func NewWriter(dev PacketWriter) *Writer {
	w := &Writer{
		dev:   dev,
		queue: make(chan []byte, writerQueue),
		free:  make(chan []byte, writerQueue+writerBatch),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for range writerQueue + writerBatch {
		w.free <- make([]byte, Offset+65535)
	}
	go w.run()
	return w
}

// Write queues a copy of pkt (an IP packet, no headroom) for the device.
func (w *Writer) Write(pkt []byte) error {
	var buf []byte
	select {
	case buf = <-w.free:
	default:
		w.drops.Add(1)
		return ErrQueueFull
	}
	n := copy(buf[Offset:], pkt)
	select {
	case <-w.stop:
		w.free <- buf
		return os.ErrClosed
	default:
	}
	select {
	case w.queue <- buf[:Offset+n]:
		return nil
	default: // more buffers than queue slots exist while a batch is out: never block the caller
		w.free <- buf
		w.drops.Add(1)
		return ErrQueueFull
	}
}

// Dropped returns how many packets Write refused because the queue was full, and how many the device
// refused.
func (w *Writer) Dropped() (queueFull, failed uint64) { return w.drops.Load(), w.failed.Load() }

// Close stops the writer; packets still queued are discarded. It does not close the device.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([][]byte, 0, writerBatch)
	for {
		select {
		case <-w.stop:
			return
		case b := <-w.queue:
			batch = append(batch[:0], b)
		}
	more:
		for len(batch) < writerBatch {
			select {
			case b := <-w.queue:
				batch = append(batch, b)
			default:
				break more
			}
		}
		if _, err := w.dev.Write(batch, Offset); err != nil {
			w.failed.Add(uint64(len(batch)))
		}
		for i, b := range batch {
			w.free <- b[:cap(b)]
			batch[i] = nil
		}
	}
}
