package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
)

// waterDevice adapts a water interface to Device, one packet per system call.
type waterDevice struct {
	file *os.File
	name string
	mtu  int

	closeOnce sync.Once
	closeErr  error
}

func openWater(name string, mtu int) (Device, error) {
	// water leaks the descriptor if the kernel refuses the name; Validate keeps out the names it
	// would refuse for their form, which leaves names already taken.
	ifce, err := water.New(water.Config{
		DeviceType:             water.TUN,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: name},
	})
	if err != nil {
		return nil, err
	}
	file, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("water returned %T, not a file", ifce.ReadWriteCloser)
	}
	d := &waterDevice{file: file, name: ifce.Name(), mtu: mtu}
	// water opens the device without O_CLOEXEC, so every command the daemon runs would inherit it
	// (and keep the interface alive after we close it). Not file.Fd(): that would make the
	// descriptor blocking, and Close could no longer wake a pending Read.
	rc, err := file.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { unix.CloseOnExec(int(fd)) })
	}
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

func (d *waterDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("tun: read: %d sizes for %d buffers", len(sizes), len(bufs))
	}
	n, err := d.file.Read(bufs[0][offset:])
	if err != nil {
		return 0, fmt.Errorf("tun: read %s: %w", d.name, err)
	}
	sizes[0] = n
	return 1, nil
}

// Write tries every packet, so that one the kernel refuses (a malformed header, say) does not hold
// back the rest of the batch; the error joins every refusal.
func (d *waterDevice) Write(bufs [][]byte, offset int) (int, error) {
	var (
		n    int
		errs []error
	)
	for _, b := range bufs {
		_, err := d.file.Write(b[offset:])
		if err == nil {
			n++
			continue
		}
		errs = append(errs, err)
		if errors.Is(err, os.ErrClosed) {
			break
		}
	}
	if errs != nil {
		return n, fmt.Errorf("tun: write %s: %w", d.name, errors.Join(errs...))
	}
	return n, nil
}

func (d *waterDevice) BatchSize() int { return 1 }
func (d *waterDevice) MTU() int       { return d.mtu }
func (d *waterDevice) Name() string   { return d.name }

func (d *waterDevice) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.file.Close() })
	return d.closeErr
}
