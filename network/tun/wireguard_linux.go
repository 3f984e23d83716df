package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// virtioNetHdrLen is the header wireguard/tun writes into the headroom before each packet.
const virtioNetHdrLen = 10

// wgDevice adapts a wireguard/tun device to Device.
type wgDevice struct {
	dev     wgtun.Device
	name    string
	mtu     int
	batch   int
	closed  atomic.Bool
	drained chan struct{} // closed when the events drain has seen Events() close

	closeOnce sync.Once
	closeErr  error
}

// openWireGuard creates the device the way wgtun.CreateTUN does, except that it closes the file
// when the kernel refuses the name: CreateTUN leaks the descriptor on that path, and a daemon that
// retries a busy name would run out of them.
func openWireGuard(name string, mtu int) (Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err == nil {
		// Non-blocking before os.NewFile, so that the runtime poller owns the descriptor and Close
		// can wake a pending Read.
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "/dev/net/tun")
	dev, err := wgtun.CreateTUNFromFile(file, mtu)
	if err != nil {
		// Closing the file also ends the listener goroutines wgtun starts before its last step,
		// setting the MTU (which a validated MTU passes).
		file.Close()
		return nil, err
	}
	d := &wgDevice{dev: dev, mtu: mtu, batch: dev.BatchSize(), drained: make(chan struct{})}
	go d.drainEvents()
	if d.name, err = dev.Name(); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// drainEvents discards the device's link events. Nobody here needs them (MTU is fixed at Open),
// but wgtun's listeners block on a full events channel and would never see Close otherwise.
func (d *wgDevice) drainEvents() {
	defer close(d.drained)
	for range d.dev.Events() {
	}
}

func (d *wgDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("tun: read: %d sizes for %d buffers", len(sizes), len(bufs))
	}
	n, err := d.dev.Read(bufs, sizes, offset)
	if err != nil && d.closed.Load() {
		// After Close, wgtun may report its netlink listener's shutdown instead.
		return 0, fmt.Errorf("tun: read %s: %w", d.name, os.ErrClosed)
	}
	return n, err
}

func (d *wgDevice) Write(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if offset < virtioNetHdrLen {
		return 0, fmt.Errorf("tun: write: offset %d leaves no room for the %d-byte virtio-net header", offset, virtioNetHdrLen)
	}
	// wgtun returns bytes, not packets, and after coalescing cannot tell which packets a failed
	// write carried: a batch is all or (as far as the caller can know) nothing.
	if _, err := d.dev.Write(bufs, offset); err != nil {
		if d.closed.Load() {
			err = os.ErrClosed
		}
		return 0, fmt.Errorf("tun: write %s: %w", d.name, err)
	}
	return len(bufs), nil
}

func (d *wgDevice) BatchSize() int { return d.batch }
func (d *wgDevice) MTU() int       { return d.mtu }
func (d *wgDevice) Name() string   { return d.name }

func (d *wgDevice) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.closeErr = d.dev.Close()
		// Events() closes only once both of wgtun's listener goroutines have returned.
		<-d.drained
	})
	return d.closeErr
}
