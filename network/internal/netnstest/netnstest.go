// Package netnstest holds what the network module's namespace tests share: the check that they can
// run, commands inside namespaces, and running Go code on a thread inside one. Every namespace a test
// uses is one it made itself.
package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Need skips t unless it runs as root with iproute2 and nftables, and fails it instead in CI, where
// such a test must run.
func Need(t testing.TB) {
	t.Helper()
	_, ipErr := exec.LookPath("ip")
	_, nftErr := exec.LookPath("nft")
	if os.Geteuid() == 0 && ipErr == nil && nftErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root, iproute2 and nftables, and CI must run it")
	}
	t.Skip("needs root, iproute2 and nftables")
}

// Run runs a command and fails t if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// NFT loads an nftables ruleset (rules need newlines between statements) into the namespace ns.
func NFT(t testing.TB, ns, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", ns, err, out)
	}
}

// In runs f on a thread inside the named namespace and returns when f does; sockets f makes stay
// in the namespace.
func In(t testing.TB, name string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		f()
	}()
	<-done
}
