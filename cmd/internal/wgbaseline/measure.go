package wgbaseline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/device"
)

// Result is one measurement of the baseline tunnel.
type Result struct {
	// BitsPerSecond is the TCP goodput the iperf3 server received.
	BitsPerSecond float64
	// CPUSecondsPerGB is the CPU time (user and system) this process, which runs both wireguard-go
	// devices, spent during the flow, per 10⁹ bytes received.
	CPUSecondsPerGB float64
	// Bytes is what the iperf3 server received, and TunnelBytes what the receiving device took in
	// from its peer (encrypted, with the inner headers and WireGuard's overhead): at least Bytes when
	// the flow went through the tunnel.
	Bytes       float64
	TunnelBytes uint64
}

// The tunnel's addresses. They exist only inside the namespaces that Measure makes.
var (
	sideA = end{veth: "10.241.0.1", tunAddr: "10.242.0.1"}
	sideB = end{veth: "10.241.0.2", tunAddr: "10.242.0.2"}
)

var runs atomic.Int64

// Prefix starts the name of every namespace that Measure makes in this process.
func Prefix() string { return fmt.Sprintf("wg%d-", os.Getpid()) }

// Measure builds two namespaces joined by a veth pair, runs a wireguard-go device in each with the
// other as its one peer, sends one iperf3 TCP flow from a to b through the tunnel for seconds, and
// tears all of it down again, whether it succeeds, fails or panics.
func Measure(ctx context.Context, seconds int) (_ Result, err error) {
	if seconds < 1 {
		return Result{}, fmt.Errorf("measure for %d s: need at least 1", seconds)
	}
	tn := &tunnel{}
	defer func() {
		if cerr := tn.close(); cerr != nil && err == nil {
			err = fmt.Errorf("tear down: %w", cerr)
		}
	}()
	if err := tn.build(ctx, fmt.Sprintf("%s%d-", Prefix(), runs.Add(1))); err != nil {
		return Result{}, err
	}
	srv, err := startIperfServer(ctx, tn.b, sideB.tunAddr)
	if err != nil {
		return Result{}, err
	}
	defer srv.stop()
	cpu0 := cpuTime()
	f, err := runIperfClient(ctx, tn.a, sideB.tunAddr, seconds)
	cpu := cpuTime() - cpu0
	if err != nil {
		return Result{}, err
	}
	rx, err := received(tn.devs[1])
	if err != nil {
		return Result{}, err
	}
	return Result{BitsPerSecond: f.bitsPerSecond, CPUSecondsPerGB: cpu.Seconds() / (f.bytes / 1e9), Bytes: f.bytes, TunnelBytes: rx}, nil
}

// received returns the bytes dev took in from its peers, from its configuration (rx_bytes).
func received(dev *device.Device) (uint64, error) {
	cfg, err := dev.IpcGet()
	if err != nil {
		return 0, fmt.Errorf("read the device's counters: %w", err)
	}
	var total uint64
	found := false
	for _, line := range strings.Split(cfg, "\n") {
		v, ok := strings.CutPrefix(line, "rx_bytes=")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("device counter %q: %w", line, err)
		}
		total += n
		found = true
	}
	if !found {
		return 0, errors.New("the device reports no rx_bytes")
	}
	return total, nil
}

// tunnel is the two namespaces, the veth pair between them and a device in each.
type tunnel struct {
	a, b *namespace
	devs []*device.Device
}

func (tn *tunnel) build(ctx context.Context, prefix string) error {
	var err error
	if tn.a, err = addNamespace(ctx, prefix+"a"); err != nil {
		return err
	}
	if tn.b, err = addNamespace(ctx, prefix+"b"); err != nil {
		return err
	}
	// Made inside a with its peer end placed in b, the pair never appears in the root namespace.
	if err := tn.a.ip(ctx, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", tn.b.name); err != nil {
		return err
	}
	a, b := sideA, sideB
	for _, s := range []struct {
		ns  *namespace
		own *end
	}{{tn.a, &a}, {tn.b, &b}} {
		if err := s.ns.ip(ctx, "addr", "add", s.own.veth+"/24", "dev", "veth0"); err != nil {
			return err
		}
		if err := s.ns.ip(ctx, "link", "set", "veth0", "up"); err != nil {
			return err
		}
		if s.own.keys, err = newKeyPair(); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		ns        *namespace
		own, peer end
	}{{tn.a, a, b}, {tn.b, b, a}} {
		dev, err := startDevice(ctx, s.ns, s.own, s.peer)
		if err != nil {
			return err
		}
		tn.devs = append(tn.devs, dev)
	}
	return nil
}

// close closes the devices, which releases their TUNs and sockets, and then removes the namespaces.
func (tn *tunnel) close() error {
	for _, d := range tn.devs {
		d.Close()
	}
	var errs []error
	for _, ns := range []*namespace{tn.a, tn.b} {
		if ns != nil {
			errs = append(errs, ns.remove())
		}
	}
	return errors.Join(errs...)
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
