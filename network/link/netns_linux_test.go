package link

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// twoNamespaces wires namespaces A and B to a bridge in a third, each with a veth pair, as the
// testnet (cmd/internal/testnet) wires its nodes, and returns A, B and their addresses. It moves the
// test goroutine onto a thread of its own for the rest of its life, since netns.NewNamed enters each
// namespace it makes.
func twoNamespaces(t *testing.T) (nsA, nsB netns.NsHandle, addrA, addrB netip.Addr) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for network namespaces, and CI must run it")
		}
		t.Skip("needs root for network namespaces")
	}
	runtime.LockOSThread() // never unlocked: see above
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orig.Close() })
	var hs [3]netns.NsHandle
	for i, role := range []string{"hub", "a", "b"} {
		name := fmt.Sprintf("mvlink%d-%s", os.Getpid(), role)
		h, err := netns.NewNamed(name) // enters it
		netns.Set(orig)
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		t.Cleanup(func() { h.Close(); netns.DeleteNamed(name) })
		hs[i] = h
	}
	handle := func(ns netns.NsHandle) *netlink.Handle {
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	hub := handle(hs[0])
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hub.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	hub.LinkSetUp(br)
	addrs := [2]netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")}
	for i, ns := range hs[1:] {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("h%d", i)}, PeerName: "e0", PeerNamespace: netlink.NsFd(ns)}
		if err := hub.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
		outer, err := hub.LinkByName(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := hub.LinkSetMaster(outer, br); err != nil {
			t.Fatal(err)
		}
		hub.LinkSetUp(outer)
		h := handle(ns)
		inner, err := h.LinkByName("e0")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(inner, &netlink.Addr{IPNet: &net.IPNet{IP: addrs[i].AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(inner); err != nil {
			t.Fatal(err)
		}
	}
	return hs[1], hs[2], addrs[0], addrs[1]
}

// inNamespace runs f inside ns, on a thread locked for the while. If the thread cannot be moved back,
// it stays locked, and the runtime ends it with the goroutine rather than reuse it.
func inNamespace(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	f()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
}

// udpStats returns the Udp line of /proc/net/snmp of the calling thread's namespace, by field name.
func udpStats(t *testing.T) map[string]uint64 {
	b, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	m := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			m[names[i]], _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return m
}

// UDP GSO datagrams stay whole from one namespace to another across veth pairs and a bridge, so
// that a relay on the testnet reads a batch of cells as one datagram: the kernel cuts them apart
// only for a socket without UDP GRO. This is what makes GSO pay between namespaces.
func TestGSOStaysCoalescedAcrossVethAndBridge(t *testing.T) {
	nsA, nsB, addrA, addrB := twoNamespaces(t)
	listenIn := func(ns netns.NsHandle, addr netip.Addr) nodeOption {
		return withConfig(func(c *Config) {
			c.Conn.Close()
			inNamespace(t, ns, func() {
				var err error
				if c.Conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0))); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			a := newTestNode(t, listenIn(nsA, addrA))
			b := newTestNode(t, listenIn(nsB, addrB), withOffload(true, gro))
			needOffload(t, a)
			var snmp0, snmp1 map[string]uint64
			inNamespace(t, nsB, func() { snmp0 = udpStats(t) })
			const n = 8 * MaxBatch
			sent, got := sendAndCount(t, a, b, numbered(n, benchSize))
			inNamespace(t, nsB, func() { snmp1 = udpStats(t) })
			t.Logf("%d packets: %d datagrams sent in %d calls; %d read as %d datagrams in %d calls; the kernel counted %d datagrams in",
				sent.PacketsOut, sent.WriteMsgs, sent.WriteCalls, got.PacketsIn, got.ReadMsgs, got.ReadCalls, snmp1["InDatagrams"]-snmp0["InDatagrams"])
			if sent.WriteMsgs > n/MaxBatch+1 { // +1: a keepalive may leave meanwhile
				t.Errorf("%d packets went as %d datagrams, want %d", n, sent.WriteMsgs, n/MaxBatch)
			}
			if gro && got.ReadMsgs > n/MaxBatch+1 {
				t.Errorf("%d packets arrived as %d datagrams, want %d: segmented on the way", n, got.ReadMsgs, n/MaxBatch)
			}
			if !gro && (got.ReadMsgs < n || got.ReadMsgs > n+1) {
				t.Errorf("%d packets arrived as %d datagrams at a socket without GRO, want one each", n, got.ReadMsgs)
			}
		})
	}
}
