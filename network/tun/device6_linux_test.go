package tun

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestDeviceIPv6 (issue 13): a device opened with an IPv6 address has it at once (no duplicate
// address detection, so not tentative), has no link-local address (so the kernel sends nothing of its
// own into the tunnel), and carries a socket's IPv6 datagram routed into it.
func TestDeviceIPv6(t *testing.T) {
	t.Cleanup(func() { checkNoNetnsLeft(t) })
	enterNetns(t)
	addr6 := netip.MustParsePrefix("fd00:77::1/64")
	dev, err := Open(Config{Name: "mvtun6", MTU: 1332, Addr: tunPrefix, Addr6: addr6, Up: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	link, err := netlink.LinkByName("mvtun6")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != addr6.String() || addrs[0].Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Fatalf("IPv6 addresses %+v, want only %v, not tentative", addrs, addr6)
	}
	conn, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr6.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := netip.MustParseAddrPort("[fd00:77::2]:9")
	if _, err := conn.WriteToUDPAddrPort([]byte("v6 into the tunnel"), peer); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(5*time.Second, func() { dev.Close() })
	defer watchdog.Stop()
	bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
	n, err := dev.Read(bufs, sizes, Offset)
	if err != nil {
		t.Fatalf("Read (the watchdog closes the device after 5 s): %v", err)
	}
	// The first packet is the datagram: with no link-local address there is no solicitation before it.
	p := bufs[0][Offset : Offset+sizes[0]]
	if n < 1 || len(p) < 48 || p[0]>>4 != 6 || p[6] != 17 || netip.AddrFrom16([16]byte(p[8:24])) != addr6.Addr() ||
		netip.AddrFrom16([16]byte(p[24:40])) != peer.Addr() || binary.BigEndian.Uint16(p[42:]) != peer.Port() || string(p[48:]) != "v6 into the tunnel" {
		t.Fatalf("read %x", p)
	}
	for _, bad := range []Config{
		{Addr6: netip.MustParsePrefix("10.0.0.1/24")},
		{Addr6: netip.MustParsePrefix("::ffff:10.0.0.1/120")},
		{Addr6: netip.MustParsePrefix("ff02::1/128")},
		{Addr6: addr6, MTU: 1200},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
