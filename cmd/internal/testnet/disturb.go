package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Disturbance is the load of a busy machine, to run beside a testnet: what `make test` does to the
// kernel and the CPUs while the testnet's own tests run.
type Disturbance struct {
	// Namespaces churns network namespaces: make one, add a veth pair and a bridge in it, bring them
	// up, delete it, again and again. Each step takes the kernel's rtnl lock, which every namespace,
	// link, address and route change of the testnet needs too.
	Namespaces bool
	// CPU keeps every core busy: one spinning goroutine per core, each on its own OS thread.
	CPU bool
	// Memory holds MemoryFraction of MemAvailable, touched page by page, and keeps replacing it a
	// chunk at a time: page faults, zeroing and reclaim for the kernel.
	Memory bool

	// Prefix names the churned namespaces (default mvd<pid>-); they are numbered after it.
	Prefix string
	// CPUs is how many goroutines spin (default runtime.NumCPU()).
	CPUs int
	// MemoryFraction is the share of MemAvailable held (default 0.25).
	MemoryFraction float64
	// Limit ends the disturbance on its own after this long (default 6 hours): no load runs unbounded.
	Limit time.Duration
}

// DisturbanceStats is what a disturbance did.
type DisturbanceStats struct {
	Took time.Duration
	// Namespaces is how many namespaces were made and deleted again; NamespaceErrors how many steps
	// failed, LastError the last failure.
	Namespaces, NamespaceErrors int64
	LastError                   string
	// Spinners is how many goroutines spun; CPUTime is the wall time they spun, summed.
	Spinners int
	CPUTime  time.Duration
	// MemoryHeld is the most bytes held at once; MemoryTouched the bytes mapped and written in all, MemoryErrors
	// how many chunks could not be mapped.
	MemoryHeld, MemoryTouched int64
	MemoryErrors              int64
}

func (s DisturbanceStats) String() string {
	var parts []string
	if s.Namespaces > 0 || s.NamespaceErrors > 0 {
		p := fmt.Sprintf("%d namespaces made and deleted (%.1f/s)", s.Namespaces, float64(s.Namespaces)/s.Took.Seconds())
		if s.NamespaceErrors > 0 {
			p += fmt.Sprintf(", %d failed steps (last: %s)", s.NamespaceErrors, s.LastError)
		}
		parts = append(parts, p)
	}
	if s.Spinners > 0 {
		parts = append(parts, fmt.Sprintf("%d spinning threads, %v of CPU wanted", s.Spinners, s.CPUTime.Round(time.Second)))
	}
	if s.MemoryHeld > 0 || s.MemoryErrors > 0 {
		p := fmt.Sprintf("%d MB held, %d MB touched in all", s.MemoryHeld>>20, s.MemoryTouched>>20)
		if s.MemoryErrors > 0 {
			p += fmt.Sprintf(", %d chunks not mapped", s.MemoryErrors)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no disturbance"
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(" in %v", s.Took.Round(time.Second))
}

// StartDisturbance starts the load d asks for and returns a function that stops it, waits until
// everything it made is gone (every namespace deleted, every chunk unmapped) and reports what it did.
// The load also stops when ctx ends or d.Limit passes; stop must still be called.
func StartDisturbance(ctx context.Context, d Disturbance) (stop func() DisturbanceStats, err error) {
	if d.Prefix == "" {
		d.Prefix = fmt.Sprintf("mvd%d-", os.Getpid()%100000)
	}
	if d.CPUs <= 0 {
		d.CPUs = runtime.NumCPU()
	}
	if d.MemoryFraction <= 0 {
		d.MemoryFraction = 0.25
	}
	if d.MemoryFraction > 0.5 {
		return nil, fmt.Errorf("disturbance: %.2f of the free memory is too much to take on a shared machine", d.MemoryFraction)
	}
	if d.Limit <= 0 {
		d.Limit = 6 * time.Hour
	}
	if d.Namespaces {
		if os.Geteuid() != 0 {
			return nil, errors.New("disturbance: namespace churn needs root")
		}
		if _, err := exec.LookPath("ip"); err != nil {
			return nil, fmt.Errorf("disturbance: namespace churn needs iproute2: %w", err)
		}
	}
	var memTarget int64
	if d.Memory {
		avail, err := memAvailable()
		if err != nil {
			return nil, fmt.Errorf("disturbance: %w", err)
		}
		memTarget = int64(float64(avail) * d.MemoryFraction)
	}

	ctx, cancel := context.WithTimeout(ctx, d.Limit)
	var (
		wg      sync.WaitGroup
		started = time.Now()
		c       disturbCounters
	)
	if d.Namespaces {
		wg.Go(func() { churnNamespaces(ctx, d.Prefix, &c) })
	}
	spinners := 0
	if d.CPU {
		spinners = d.CPUs
		// The spinners take as many Ps as there are cores; the rest of this program (the soak's
		// timing of a download, the testnet's web server) gets Ps of its own beside them, so that
		// the kernel, not Go's scheduler, shares the CPUs among everything.
		old := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(old + spinners)
		var spinning sync.WaitGroup
		for range spinners {
			spinning.Go(func() { spin(ctx, &c) })
		}
		wg.Go(func() {
			spinning.Wait()
			runtime.GOMAXPROCS(old)
		})
	}
	if d.Memory {
		wg.Go(func() { pressMemory(ctx, memTarget, &c) })
	}
	var once sync.Once
	var stats DisturbanceStats
	return func() DisturbanceStats {
		once.Do(func() {
			cancel()
			wg.Wait()
			stats = DisturbanceStats{
				Took:            time.Since(started),
				Namespaces:      c.namespaces.Load(),
				NamespaceErrors: c.nsErrors.Load(),
				Spinners:        spinners,
				CPUTime:         time.Duration(c.spun.Load()),
				MemoryHeld:      c.memHeld.Load(),
				MemoryTouched:   c.memTouched.Load(),
				MemoryErrors:    c.memErrors.Load(),
			}
			if e, ok := c.lastErr.Load().(string); ok {
				stats.LastError = e
			}
		})
		return stats
	}, nil
}

type disturbCounters struct {
	namespaces, nsErrors atomic.Int64
	lastErr              atomic.Value // string
	spun                 atomic.Int64 // nanoseconds
	memHeld, memTouched  atomic.Int64
	memErrors            atomic.Int64
}

// churnNamespaces makes and deletes namespaces until ctx ends. Every step runs to its end (the
// commands are not tied to ctx), so a namespace it made is always deleted again.
func churnNamespaces(ctx context.Context, prefix string, c *disturbCounters) {
	for i := 0; ctx.Err() == nil; i++ {
		name := prefix + strconv.Itoa(i)
		if _, err := sh("ip", "netns", "add", name); err != nil {
			c.nsErrors.Add(1)
			c.lastErr.Store(err.Error())
			// Not made: nothing to delete. Do not spin on a failure that repeats.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		ok := true
		for _, args := range [][]string{
			{"ip", "-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb"},
			{"ip", "-n", name, "link", "add", "name", "br0", "type", "bridge"},
			{"ip", "-n", name, "link", "set", "va", "master", "br0"},
			{"ip", "-n", name, "link", "set", "lo", "up"},
			{"ip", "-n", name, "link", "set", "va", "up"},
			{"ip", "-n", name, "link", "set", "vb", "up"},
			{"ip", "-n", name, "link", "set", "br0", "up"},
		} {
			if _, err := sh(args...); err != nil {
				c.nsErrors.Add(1)
				c.lastErr.Store(err.Error())
				ok = false
				break
			}
		}
		if _, err := sh("ip", "netns", "del", name); err != nil {
			c.nsErrors.Add(1)
			c.lastErr.Store(err.Error())
			// Try once more before giving up on it; a namespace left behind is a bug of this loop.
			time.Sleep(50 * time.Millisecond)
			if _, err := sh("ip", "netns", "del", name); err != nil {
				continue
			}
		}
		if ok {
			c.namespaces.Add(1)
		}
	}
}

// spin keeps one core busy until ctx ends, on an OS thread of its own.
func spin(ctx context.Context, c *disturbCounters) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var stop atomic.Bool
	go func() {
		<-ctx.Done()
		stop.Store(true)
	}()
	start := time.Now()
	x := uint64(1)
	for !stop.Load() {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	c.spun.Add(int64(time.Since(start)))
	spinSink.Store(x)
}

// spinSink takes the spinners' result, so that their loop is not optimised away.
var spinSink atomic.Uint64

const memChunk = 64 << 20

// pressMemory maps and touches chunks until target bytes are held, then keeps unmapping the oldest
// chunk and mapping a new one until ctx ends; it unmaps everything before it returns.
func pressMemory(ctx context.Context, target int64, c *disturbCounters) {
	var chunks [][]byte
	defer func() {
		for _, m := range chunks {
			unix.Munmap(m)
		}
	}()
	page := os.Getpagesize()
	for ctx.Err() == nil {
		if int64(len(chunks)+1)*memChunk > target && len(chunks) > 0 {
			unix.Munmap(chunks[0])
			chunks = chunks[1:]
		}
		m, err := unix.Mmap(-1, 0, memChunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			c.memErrors.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for i := 0; i < len(m); i += page {
			m[i] = byte(i)
		}
		chunks = append(chunks, m)
		c.memTouched.Add(memChunk)
		held := int64(len(chunks)) * memChunk
		if held > c.memHeld.Load() {
			c.memHeld.Store(held)
		}
		if int64(len(chunks)+1)*memChunk > target {
			// Held in full: from here on one chunk is replaced every 100 ms (640 MB/s of fresh pages).
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("MemAvailable: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

// NamespacesWithPrefix lists the network namespaces whose names begin with prefix.
func NamespacesWithPrefix(prefix string) []string {
	out, _ := sh("ip", "netns", "list")
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}
