package tun

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	tunPrefix = netip.MustParsePrefix("10.77.0.1/24")
	peerAddr  = netip.MustParseAddrPort("10.77.0.2:9") // routed into the TUN; nothing answers there
)

const testMTU = 1400

var backends = []Backend{BackendWireGuard, BackendWater}

// openInNetns opens a device in a fresh namespace and closes it before the namespace goes.
func openInNetns(t testing.TB, backend Backend) Device {
	t.Helper()
	enterNetns(t)
	dev, err := Open(Config{Name: "mvtun0", MTU: testMTU, Backend: backend, Addr: tunPrefix, Up: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return dev
}

// readUDP reads from dev until an IPv4 UDP packet to want arrives, skipping the kernel's own
// traffic (IPv6 router solicitations and MLD reports when the link comes up).
func readUDP(t *testing.T, dev Device, want netip.AddrPort) (src netip.AddrPort, payload []byte) {
	t.Helper()
	watchdog := time.AfterFunc(5*time.Second, func() { dev.Close() })
	defer watchdog.Stop()
	bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
	for {
		n, err := dev.Read(bufs, sizes, Offset)
		if err != nil && !errors.Is(err, ErrTooManySegments) {
			t.Fatalf("Read (the watchdog closes the device after 5 s): %v", err)
		}
		for i := range n {
			s, d, p, err := parseIPv4UDP(bufs[i][Offset : Offset+sizes[i]])
			if errors.Is(err, errNotUDP4) {
				continue
			}
			if err != nil {
				t.Fatalf("packet from the kernel: %v", err)
			}
			if d == want {
				return s, append([]byte(nil), p...)
			}
		}
	}
}

func TestDeviceInNetns(t *testing.T) {
	t.Cleanup(func() { checkNoNetnsLeft(t) })
	for _, backend := range backends {
		t.Run(string(backend), func(t *testing.T) {
			dev := openInNetns(t, backend)
			if dev.Name() != "mvtun0" || dev.MTU() != testMTU {
				t.Errorf("Name %q MTU %d, want mvtun0 %d", dev.Name(), dev.MTU(), testMTU)
			}
			if backend == BackendWater && dev.BatchSize() != 1 || dev.BatchSize() < 1 {
				t.Errorf("BatchSize %d", dev.BatchSize())
			}
			checkLink(t, dev.Name())
			checkCloseOnExec(t, dev)

			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunPrefix.Addr(), 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			local := conn.LocalAddr().(*net.UDPAddr).AddrPort()

			// Kernel to device: the route for 10.77.0.0/24 sends the datagram into the TUN.
			sent := []byte("into the tunnel via " + string(backend))
			if _, err := conn.WriteToUDPAddrPort(sent, peerAddr); err != nil {
				t.Fatal(err)
			}
			src, got := readUDP(t, dev, peerAddr)
			if src != local || string(got) != string(sent) {
				t.Errorf("Read: from %v payload %q, want from %v payload %q", src, got, local, sent)
			}

			// Device to kernel: a reply from the peer reaches the socket.
			reply := []byte("out of the tunnel via " + string(backend))
			pkt := ipv4UDP(peerAddr, local, reply)
			buf := make([]byte, Offset+len(pkt), Offset+MaxMTU) // spare capacity for coalescing
			copy(buf[Offset:], pkt)
			if n, err := dev.Write([][]byte{buf}, Offset); n != 1 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			rb := make([]byte, 2048)
			n, from, err := conn.ReadFromUDPAddrPort(rb)
			if err != nil {
				t.Fatalf("socket did not receive the written packet: %v", err)
			}
			if from != peerAddr || string(rb[:n]) != string(reply) {
				t.Errorf("socket got %q from %v, want %q from %v", rb[:n], from, reply, peerAddr)
			}

			checkCloseUnblocksRead(t, dev)
		})
	}
}

// checkLink asserts what Open asked netlink for, as the kernel reports it.
func checkLink(t *testing.T, name string) {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().MTU != testMTU || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("link MTU %d flags %v, want %d and up", link.Attrs().MTU, link.Attrs().Flags, testMTU)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != tunPrefix.String() {
		t.Errorf("link addresses %v, want %v", addrs, tunPrefix)
	}
	// Configure is what a restarted daemon calls on a configured device: it must not fail.
	if err := Configure(name, tunPrefix, testMTU); err != nil {
		t.Errorf("Configure again: %v", err)
	}
}

// checkCloseOnExec asserts that commands the daemon runs (ip, nft) do not inherit the device,
// which would keep the interface alive after Close.
func checkCloseOnExec(t *testing.T, dev Device) {
	t.Helper()
	var f *os.File
	switch d := dev.(type) {
	case *wgDevice:
		f = d.dev.File()
	case *waterDevice:
		f = d.file
	}
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	if err := rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("device descriptor flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
}

func checkCloseUnblocksRead(t *testing.T, dev Device) {
	t.Helper()
	readErr := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
		for {
			if _, err := dev.Read(bufs, sizes, Offset); err != nil {
				readErr <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the assertions hold either way
	if err := dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("pending Read ended with %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	buf := make([]byte, Offset+28)
	if _, err := dev.Write([][]byte{buf}, Offset); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want os.ErrClosed", err)
	}
}

func TestOpenBusyNameKeepsNoDescriptor(t *testing.T) {
	t.Cleanup(func() { checkNoNetnsLeft(t) })
	t.Run("wireguard", func(t *testing.T) {
		dev := openInNetns(t, BackendWireGuard)
		before := countFDs(t)
		for range 3 {
			second, err := Open(Config{Name: dev.Name()})
			if err == nil {
				second.Close()
				t.Fatal("opened a second device under a name in use")
			}
			if !strings.Contains(err.Error(), "held by another program (another VPN?") {
				t.Fatalf("a name in use: %v, want it said that another program holds it", err)
			}
		}
		if after := countFDs(t); after != before {
			t.Errorf("%d descriptors before, %d after three refused Opens", before, after)
		}
	})
}

func countFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestDeviceHotPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	t.Cleanup(func() { checkNoNetnsLeft(t) })
	for _, backend := range backends {
		t.Run(string(backend), func(t *testing.T) {
			dev := openInNetns(t, backend)
			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunPrefix.Addr(), 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
			payload := make([]byte, 1200)
			read := func() {
				if _, err := conn.WriteToUDPAddrPort(payload, peerAddr); err != nil {
					t.Fatal(err)
				}
				if _, err := dev.Read(bufs, sizes, Offset); err != nil {
					t.Fatal(err)
				}
			}
			if a := testing.AllocsPerRun(50, read); a != 0 {
				t.Errorf("Read: %v allocations per call, want 0", a)
			}

			// One flow, so BackendWireGuard coalesces it; 10.77.0.3 is not local and the namespace
			// does not forward, so the kernel drops the packets after taking them.
			pkt := ipv4UDP(peerAddr, netip.MustParseAddrPort("10.77.0.3:9"), payload)
			out := make([][]byte, 8)
			backing := make([][]byte, len(out))
			for i := range backing {
				backing[i] = make([]byte, Offset+MaxMTU)
			}
			write := func() {
				// Write may have grown and rewritten the buffers: rebuild them each time, as a
				// caller reusing buffers must.
				for i := range out {
					out[i] = backing[i][:Offset+len(pkt)]
					copy(out[i][Offset:], pkt)
				}
				if n, err := dev.Write(out, Offset); n != len(out) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if a := testing.AllocsPerRun(50, write); a != 0 {
				t.Errorf("Write: %v allocations per call, want 0", a)
			}
		})
	}
}
