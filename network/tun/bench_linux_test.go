package tun

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRead measures how fast each backend takes packets from the kernel. A socket in the same
// namespace sends UDP GSO trains (40 segments of 1200 bytes per send) into the TUN, so BackendWireGuard
// receives whole trains while BackendWater receives the segments one by one, as in facts.md. One op
// is one Read; compare pkts/s.
func BenchmarkRead(b *testing.B) {
	const segment, segments = 1200, 40
	for _, backend := range backends {
		b.Run(string(backend), func(b *testing.B) {
			b.Cleanup(func() { checkNoNetnsLeft(b) })
			dev := openInNetns(b, backend)
			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunPrefix.Addr(), 0)))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			rc, err := conn.SyscallConn()
			if err != nil {
				b.Fatal(err)
			}
			rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, segment) })
			if err != nil {
				b.Fatalf("UDP_SEGMENT: %v", err)
			}

			stop, stopped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(stopped)
				train := make([]byte, segment*segments)
				for {
					select {
					case <-stop:
						return
					default:
					}
					// The TUN queue drops what the reader cannot keep up with; errors are load.
					conn.WriteToUDPAddrPort(train, peerAddr)
				}
			}()
			defer func() { close(stop); <-stopped }()

			bufs, sizes := newBufs(dev.BatchSize(), dev.MTU())
			var pkts int
			for b.Loop() {
				n, err := dev.Read(bufs, sizes, Offset)
				if err != nil && !errors.Is(err, ErrTooManySegments) {
					b.Fatal(err)
				}
				pkts += n
			}
			b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(pkts)/float64(b.N), "pkts/read")
		})
	}
}
