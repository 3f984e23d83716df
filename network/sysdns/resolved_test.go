package sysdns

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ownNetns moves the test's goroutine (its thread locked) into a new network namespace with its
// loopback up, for the rest of the test: the route to the tunnel resolver Apply adds goes there,
// never into the host's namespace.
func ownNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI must run it")
		}
		t.Skip("needs root")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // the thread stays locked and dies with the goroutine
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// fakeResolved stands for systemd-resolved on a private bus: it records the calls it gets.
type fakeResolved struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeResolved) record(s string) *dbus.Error {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
	return nil
}

type linkAddr struct {
	Family  int32
	Address []byte
}

type linkDomain struct {
	Name    string
	Routing bool
}

func (f *fakeResolved) SetLinkDNS(i int32, a []linkAddr) *dbus.Error {
	return f.record(fmt.Sprintf("SetLinkDNS %d %v", i, a))
}
func (f *fakeResolved) SetLinkDomains(i int32, d []linkDomain) *dbus.Error {
	return f.record(fmt.Sprintf("SetLinkDomains %d %v", i, d))
}
func (f *fakeResolved) SetLinkDefaultRoute(i int32, b bool) *dbus.Error {
	return f.record(fmt.Sprintf("SetLinkDefaultRoute %d %v", i, b))
}
func (f *fakeResolved) RevertLink(i int32) *dbus.Error {
	return f.record(fmt.Sprintf("RevertLink %d", i))
}
func (f *fakeResolved) FlushCaches() *dbus.Error { return f.record("FlushCaches") }

// privateSystemBus starts a dbus-daemon of the test's own and makes it the system bus for the test.
func privateSystemBus(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon is missing (Debian: dbus-daemon)")
		}
		t.Skip("no dbus-daemon here")
	}
	// The session bus's configuration lets the test's own user (root) own any name.
	cmd := exec.Command(bin, "--session", "--address=unix:path="+filepath.Join(t.TempDir(), "bus"), "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", strings.TrimSpace(addr))
}

// TestResolvedGetsTheTunnelLink: where systemd-resolved serves resolv.conf, Auto gives the tunnel's
// link the tunnel resolver and the routing domain "~." over D-Bus, leaves the file alone, and Restore
// reverts the link.
func TestResolvedGetsTheTunnelLink(t *testing.T) {
	ownNetns(t)
	privateSystemBus(t)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fake := &fakeResolved{}
	if err := conn.Export(fake, resolvedPath, resolvedManage); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(resolvedName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v %v", r, err)
	}
	cfg := fileConfig(t)
	cfg.Mode, cfg.Link = Auto, "lo"
	stub := "nameserver 127.0.0.53\noptions edns0 trust-ad\n"
	os.WriteFile(cfg.ResolvConf, []byte(stub), 0o644)
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode() != Resolved {
		t.Fatalf("mode %s", s.Mode())
	}
	if read(t, cfg.ResolvConf) != stub {
		t.Fatal("the resolv.conf file changed")
	}
	if rs, err := netlink.RouteGet(tunnelResolver.AsSlice()); err != nil || len(rs) != 1 || rs[0].LinkIndex != 1 {
		t.Fatalf("the tunnel resolver is not routed into the link: %v %v", rs, err)
	}
	checkNoBackup(t, cfg)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.RouteGet(tunnelResolver.AsSlice()); err == nil {
		t.Fatal("the route to the tunnel resolver outlived Restore")
	}
	want := []string{"SetLinkDNS 1 [{2 [10 99 0 1]}]", "SetLinkDomains 1 [{. true}]", "SetLinkDefaultRoute 1 true", "FlushCaches", "RevertLink 1"}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.Equal(fake.calls, want) {
		t.Fatalf("calls %q\nwant %q", fake.calls, want)
	}
}

// TestResolvedAbsentFallsBackToFile: a stub resolv.conf with nobody owning systemd-resolved's name on
// the bus is replaced as a file.
func TestResolvedAbsentFallsBackToFile(t *testing.T) {
	ownNetns(t)
	privateSystemBus(t)
	cfg := fileConfig(t)
	cfg.Mode, cfg.Link = Auto, "lo"
	os.WriteFile(cfg.ResolvConf, []byte("nameserver 127.0.0.53\n"), 0o644)
	s, err := Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode() != File {
		t.Fatalf("mode %s", s.Mode())
	}
	checkOurs(t, cfg)
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	cfg.Mode = Resolved
	if _, err := Apply(cfg); err == nil {
		t.Fatal("resolved mode without systemd-resolved")
	}
}
