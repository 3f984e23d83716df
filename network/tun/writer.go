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
//
// Queued packets sit in small buffers; the writing goroutine copies each batch into a few large ones
// that have room for the device to coalesce into. A deep queue of small buffers rides out the moments
// a busy host leaves the writer off the CPU (each drop there is a lost segment of somebody's TCP flow)
// for a fraction of the memory a queue of large buffers would take.
type Writer struct {
	dev    PacketWriter
	queue  chan []byte
	free   chan []byte
	big    [][]byte // the batch as the device gets it
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	drops  atomic.Uint64
	failed atomic.Uint64
}

const (
	writerQueue = 2048 // packets waiting for the writer: ~2.7 MB of full packets
	writerBatch = 64   // packets in one Write
	smallBuf    = 2048 // a queued packet's buffer; a larger packet gets one of its own
	bigBuf      = Offset + 65535
)

// ErrQueueFull is returned by Write when the device is too far behind.
var ErrQueueFull = errors.New("tun: write queue full")

// PacketWriter is the part of a Device a Writer uses.
type PacketWriter interface {
	Write(bufs [][]byte, offset int) (int, error)
}

// NewWriter starts a writer for dev.
func NewWriter(dev PacketWriter) *Writer {
	w := &Writer{
		dev:   dev,
		queue: make(chan []byte, writerQueue),
		free:  make(chan []byte, writerQueue),
		big:   make([][]byte, writerBatch),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for range writerQueue {
		w.free <- make([]byte, smallBuf)
	}
	for i := range w.big {
		w.big[i] = make([]byte, bigBuf)
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
	if len(pkt) > len(buf) {
		w.free <- buf
		buf = make([]byte, len(pkt)) // rare: larger than any MTU the engines use
	}
	n := copy(buf, pkt)
	select {
	case <-w.stop:
		w.recycle(buf)
		return os.ErrClosed
	default:
	}
	// Every buffer taken from free fits the queue (they are as many as its slots), except the rare
	// oversized one while the queue is full.
	select {
	case w.queue <- buf[:n]:
		return nil
	default:
		w.recycle(buf)
		w.drops.Add(1)
		return ErrQueueFull
	}
}

// recycle returns a queue buffer to the free list; oversized ones are left to the collector.
func (w *Writer) recycle(b []byte) {
	if cap(b) != smallBuf {
		return
	}
	select {
	case w.free <- b[:smallBuf]:
	default: // an oversized packet's buffer that happened to be smallBuf long: the list is full
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
		var b []byte
		select {
		case <-w.stop:
			return
		case b = <-w.queue:
		}
		batch = w.add(batch[:0], b)
	more:
		for len(batch) < writerBatch {
			select {
			case b = <-w.queue:
				batch = w.add(batch, b)
			default:
				break more
			}
		}
		if _, err := w.dev.Write(batch, Offset); err != nil {
			w.failed.Add(uint64(len(batch)))
		}
		for i := range batch {
			batch[i] = nil
		}
	}
}

// add copies a queued packet into the next large buffer, after the device's headroom, and recycles
// the small one.
func (w *Writer) add(batch [][]byte, pkt []byte) [][]byte {
	big := w.big[len(batch)][:bigBuf]
	n := copy(big[Offset:], pkt)
	w.recycle(pkt)
	return append(batch, big[:Offset+n])
}
