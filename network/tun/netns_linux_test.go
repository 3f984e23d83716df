package tun

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces live (ip-netns(8) and netns.NewNamed agree).
const netnsDir = "/var/run/netns"

// netnsPrefix names every namespace this test process creates, so that a leftover is ours to
// find and no other run's.
var netnsPrefix = fmt.Sprintf("mvtun%d-", os.Getpid())

var netnsSeq atomic.Int32

// requireOrSkip fails the test under CI=true, where a missing privilege is a broken runner, and
// skips it elsewhere, where it is a developer's laptop.
func requireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// enterNetns moves the calling goroutine, for the rest of its life, onto a thread inside a fresh
// named network namespace, which t's cleanup deletes. The thread is never unlocked: when the test
// goroutine exits, the runtime ends the thread instead of reusing a thread in a foreign namespace.
// Whatever the test creates there (devices, sockets) works from any thread afterwards.
func enterNetns(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		requireOrSkip(t, "needs root to create network namespaces and TUN devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		requireOrSkip(t, "needs /dev/net/tun: %v", err)
	}
	runtime.LockOSThread()
	name := fmt.Sprintf("%s%d", netnsPrefix, netnsSeq.Add(1))
	ns, err := netns.NewNamed(name)
	if err != nil {
		// NewNamed can fail after creating the mount point; the name is unique to us, so remove it.
		os.Remove(filepath.Join(netnsDir, name))
		requireOrSkip(t, "create network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	return name
}

// checkNoNetnsLeft fails t if any namespace with this process's prefix still exists.
func checkNoNetnsLeft(t testing.TB) {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		if !os.IsNotExist(err) {
			t.Errorf("list namespaces: %v", err)
		}
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netnsPrefix) {
			t.Errorf("network namespace %s left behind", e.Name())
		}
	}
}

// staleNetns matches the names netnsPrefix makes, capturing the creator's pid.
var staleNetns = regexp.MustCompile(`^mvtun([0-9]+)-[0-9]+$`)

// sweepStaleNetns deletes namespaces left by earlier runs of these tests whose process is gone:
// cleanups do not run when a run is killed or times out. A namespace whose pid is alive (ours,
// another run's, or a reused pid) is left alone.
func sweepStaleNetns() {
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		m := staleNetns.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		netns.DeleteNamed(e.Name())
	}
}
