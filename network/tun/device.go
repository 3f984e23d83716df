package tun

import (
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Device is a TUN device moving batches of IP packets. Packets start at offset in each buffer;
// pass Offset. A Device is safe for concurrent use; Close makes a pending Read or Write, and every
// later one, return an error satisfying errors.Is(err, os.ErrClosed).
type Device interface {
	// Read waits for at least one packet and fills up to len(bufs) of them, packet i at
	// bufs[i][offset:offset+sizes[i]]. len(sizes) must be at least len(bufs).
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write hands the kernel len(bufs) packets, bufs[i][offset:] each, and returns how many it
	// accepted. It may rewrite the headroom and the packets, and grow bufs[i] into its spare
	// capacity, so a caller reusing buffers reslices them before the next use. On error
	// BackendWireGuard reports 0, as after coalescing it cannot tell which packets went out.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is how many packets one Read may return; size bufs to it. It never changes.
	BatchSize() int
	// MTU is the device's MTU as opened.
	MTU() int
	// Name is the kernel's name for the interface.
	Name() string
	// Close destroys the device and stops every goroutine it started. Calling it again returns the
	// first call's result.
	Close() error
}

// Offset is the headroom, in bytes, that callers leave before each packet: at least what any
// backend writes there (the virtio-net header of BackendWireGuard is 10 bytes), rounded up so that
// packets stay 8-byte aligned in 8-byte aligned buffers.
const Offset = 16

// ErrTooManySegments is returned by Read when the kernel handed over a GSO train with more segments
// than bufs could hold. The segments that did not fit are lost, like a dropped packet; the Device
// keeps working. It is rare with BatchSize buffers: the kernel caps UDP trains at 128 segments,
// and only TCP with a tiny MSS makes longer ones.
var ErrTooManySegments = wgtun.ErrTooManySegments
