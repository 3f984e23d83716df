package masq

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var nsCount atomic.Int32

// needRoot skips without root outside CI; in CI (CI=true) a test that needs namespaces must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err == nil {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root and iproute2, and CI must run it")
	}
	t.Skip("needs root and iproute2")
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns makes a network namespace for this test only and returns its name and an open fd of it.
func netns(t *testing.T) (string, int) {
	t.Helper()
	name := fmt.Sprintf("mvmasq%d-%d", os.Getpid(), nsCount.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return name, int(f.Fd())
}

// inNetns runs f on a thread that is inside the namespace, then puts the thread back.
func inNetns(t *testing.T, fd int, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(err) // a thread stuck in the wrong namespace must not go back to the pool
		}
	}()
	f()
}

func TestInstallReplaceRemove(t *testing.T) {
	needRoot(t)
	name, fd := netns(t)
	pool := netip.MustParsePrefix("10.8.0.0/16")
	r, err := Install(pool, "mvpn0", Options{NetNSFd: fd})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Installed(); !ok || err != nil {
		t.Fatalf("installed: %v %v", ok, err)
	}
	if _, err := Install(pool, "mvpn0", Options{NetNSFd: fd}); err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out := run(t, "ip", "netns", "exec", name, "nft", "list", "table", "ip", Table)
		for _, want := range []string{"10.8.0.0/16", `oifname != "mvpn0"`, "masquerade"} {
			if !strings.Contains(out, want) {
				t.Fatalf("ruleset lacks %q:\n%s", want, out)
			}
		}
		if strings.Count(out, "masquerade") != 1 {
			t.Fatalf("reinstalling duplicated the rule:\n%s", out)
		}
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.Installed(); ok {
		t.Fatal("rule still there after Remove")
	}
	if _, err := Install(netip.MustParsePrefix("fd00::/64"), "mvpn0", Options{NetNSFd: fd}); err == nil {
		t.Fatal("IPv6 pool accepted")
	}
}

// TestMasqueradeRewritesTheSource sends a UDP datagram from a pool address through an "exit"
// namespace to an "internet" namespace, and checks the internet sees the exit's address.
func TestMasqueradeRewritesTheSource(t *testing.T) {
	needRoot(t)
	client, cfd := netns(t)
	exitNS, efd := netns(t)
	inet, ifd := netns(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, nsCount.Load())
	ca, cb := "mvc"+id, "mvx"+id
	ea, eb := "mvy"+id, "mvi"+id
	run(t, "ip", "link", "add", ca, "netns", client, "type", "veth", "peer", "name", cb, "netns", exitNS)
	run(t, "ip", "link", "add", ea, "netns", exitNS, "type", "veth", "peer", "name", eb, "netns", inet)
	for _, c := range [][]string{
		{client, "ip", "addr", "add", "10.8.0.5/16", "dev", ca},
		{client, "ip", "link", "set", ca, "up"},
		{client, "ip", "route", "add", "default", "via", "10.8.0.1"},
		{exitNS, "ip", "addr", "add", "10.8.0.1/16", "dev", cb},
		{exitNS, "ip", "link", "set", cb, "up"},
		{exitNS, "ip", "addr", "add", "198.51.100.1/24", "dev", ea},
		{exitNS, "ip", "link", "set", ea, "up"},
		{exitNS, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{inet, "ip", "addr", "add", "198.51.100.2/24", "dev", eb},
		{inet, "ip", "link", "set", eb, "up"},
	} {
		run(t, append([]string{"ip", "netns", "exec", c[0]}, c[1:]...)...)
	}
	if _, err := Install(netip.MustParsePrefix("10.8.0.0/16"), "mvpn0", Options{NetNSFd: efd}); err != nil {
		t.Fatal(err)
	}

	var server, sender *net.UDPConn
	inNetns(t, ifd, func() {
		var err error
		server, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("198.51.100.2"), Port: 9999})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer server.Close()
	inNetns(t, cfd, func() {
		var err error
		sender, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.8.0.5")})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer sender.Close()
	if _, err := sender.WriteToUDP([]byte("hello"), &net.UDPAddr{IP: net.ParseIP("198.51.100.2"), Port: 9999}); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hello" || from.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("the internet saw %q from %v, want the exit's address 198.51.100.1", buf[:n], from)
	}
}

// TestMasqueradeIPv6 is TestMasqueradeRewritesTheSource for an exit's IPv6 pool: the internet sees
// the exit's IPv6 address, and Remove takes the ip6 table away with the ip one.
func TestMasqueradeIPv6(t *testing.T) {
	needRoot(t)
	client, cfd := netns(t)
	exitNS, efd := netns(t)
	inet, ifd := netns(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, nsCount.Load())
	ca, cb := "mvc"+id, "mvx"+id
	ea, eb := "mvy"+id, "mvi"+id
	run(t, "ip", "link", "add", ca, "netns", client, "type", "veth", "peer", "name", cb, "netns", exitNS)
	run(t, "ip", "link", "add", ea, "netns", exitNS, "type", "veth", "peer", "name", eb, "netns", inet)
	for _, c := range [][]string{
		{client, "ip", "addr", "add", "fd00:8::5/112", "dev", ca, "nodad"},
		{client, "ip", "link", "set", ca, "up"},
		{client, "ip", "-6", "route", "add", "default", "via", "fd00:8::1"},
		{exitNS, "ip", "addr", "add", "fd00:8::1/112", "dev", cb, "nodad"},
		{exitNS, "ip", "link", "set", cb, "up"},
		{exitNS, "ip", "addr", "add", "2001:db8:113::1/64", "dev", ea, "nodad"},
		{exitNS, "ip", "link", "set", ea, "up"},
		{exitNS, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		{inet, "ip", "addr", "add", "2001:db8:113::2/64", "dev", eb, "nodad"},
		{inet, "ip", "link", "set", eb, "up"},
	} {
		run(t, append([]string{"ip", "netns", "exec", c[0]}, c[1:]...)...)
	}
	r, err := Install(netip.MustParsePrefix("10.8.0.0/16"), "mvpn0", Options{NetNSFd: efd, Pool6: netip.MustParsePrefix("fd00:8::/112")})
	if err != nil {
		t.Fatal(err)
	}
	var server, sender *net.UDPConn
	inNetns(t, ifd, func() {
		var err error
		server, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("2001:db8:113::2"), Port: 9999})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer server.Close()
	inNetns(t, cfd, func() {
		var err error
		sender, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("fd00:8::5")})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer sender.Close()
	if _, err := sender.WriteToUDP([]byte("hello"), &net.UDPAddr{IP: net.ParseIP("2001:db8:113::2"), Port: 9999}); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hello" || from.Addr() != netip.MustParseAddr("2001:db8:113::1") {
		t.Fatalf("the internet saw %q from %v, want the exit's address 2001:db8:113::1", buf[:n], from)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := run(t, "ip", "netns", "exec", exitNS, "nft", "list", "tables"); strings.Contains(out, Table) {
			t.Fatalf("tables left after Remove:\n%s", out)
		}
	}
	if _, err := Install(netip.MustParsePrefix("10.8.0.0/16"), "mvpn0", Options{NetNSFd: efd, Pool6: netip.MustParsePrefix("10.9.0.0/16")}); err == nil {
		t.Fatal("an IPv4 prefix taken as the IPv6 pool")
	}
}
