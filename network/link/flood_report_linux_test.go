package link

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Figures of TestReportFlood: the flood issue 12 measured, and the limits it set.
const (
	floodRate     = 20_000 // junk initiations a second
	floodSources  = 2_000  // distinct source addresses
	floodDialers  = 100    // legitimate initiators during the flood
	admittedLimit = 0.95
	throughputMin = 0.80
)

// TestReportFlood measures, under a flood of floodRate junk initiations a second from floodSources
// addresses (sockets bound on 127.1.x.y, which the responder cannot tell from forged sources; each
// initiation has the responder's mac1, as anyone who knows a relay's key can make, and random bytes
// after it), the share of legitimate handshakes admitted at their first attempt (one initiation, and
// its resend with mac2 after a cookie reply), and a link's throughput against the same link's without
// the flood (make bench).
func TestReportFlood(t *testing.T) {
	if !*report {
		t.Skip("run with -args -report")
	}
	var delivered atomic.Int64
	b := newTestNode(t, withConfig(func(c *Config) {
		c.OnMessage = func(*Link, []byte) { delivered.Add(1) }
		c.OnLinkDown = nil
	}))
	a := newTestNode(t)
	l := dial(t, a, b)

	const phase = 3 * time.Second
	quiet := throughput(t, l, &delivered, phase)

	f := startFlood(t, b)
	time.Sleep(200 * time.Millisecond) // the flood is on before anything is measured
	// The dials go first, spread over a phase, and the throughput after: a responder saturated by
	// the bulk transfer drops handshakes in its socket buffer whoever floods it.
	var admitted atomic.Int64
	var wg sync.WaitGroup
	dialers := make([]*testNode, floodDialers)
	for i := range floodDialers {
		d := newTestNode(t, withConfig(func(c *Config) {
			c.HandshakeRetry = time.Minute
			// Each initiator on an address of its own, as on the internet: on one address they
			// would share one per-source budget (20/s).
			c.Conn.Close()
			var err error
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, 0, byte(1 + i)}), 0)
			if c.Conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src)); err != nil {
				t.Fatal(err)
			}
		}))
		dialers[i] = d
		wg.Go(func() {
			time.Sleep(time.Duration(i) * phase / floodDialers) // spread over the throughput phase
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if _, err := d.Dial(ctx, b.LocalAddr(), b.pub); err == nil {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	flooded := throughput(t, l, &delivered, phase)
	sent, elapsed := f.stop()
	var initiations, cookies uint64
	for _, d := range dialers {
		initiations += d.Stats().HandshakesInitiated
		cookies += d.Stats().CookieRepliesIn
	}
	s := b.Stats()

	share := float64(admitted.Load()) / floodDialers
	ratio := flooded / quiet
	fmt.Printf("handshake flood: %.0f junk initiations/s (%d bytes, the right mac1, random after it) from %d sources on loopback, %.1f Mbit/s\n",
		float64(sent)/elapsed.Seconds(), initiationLen, floodSources, float64(sent)*initiationLen*8/elapsed.Seconds()/1e6)
	fmt.Printf("%-52s %22s   limit ≥ %.0f%%\n", "legitimate handshakes admitted at the first attempt",
		fmt.Sprintf("%d/%d (%.0f%%)", admitted.Load(), floodDialers, 100*share), 100*admittedLimit)
	fmt.Printf("%-52s %22s   limit ≥ %.0f%%\n", "link throughput during the flood / without",
		fmt.Sprintf("%.0f / %.0f MB/s (%.0f%%)", flooded/1e6, quiet/1e6, 100*ratio), 100*throughputMin)
	fmt.Printf("junk at the responder: %d answered with cookie replies, %d cost a DH (open budget before load), %d rate-limited\n",
		s.DropCookie, s.HandshakesFailed, s.DropRateLimited)
	fmt.Printf("the legitimate initiators: %d initiations, %d cookie replies taken (each resent with mac2)\n", initiations, cookies)
	if share < admittedLimit || ratio < throughputMin {
		fmt.Println("BELOW LIMIT")
	}
}

// throughput sends full cells over l for d, at most window in flight, and returns the bytes a second
// delivered. Cells the receiver's socket buffer dropped are written off after a quiet millisecond, so
// that a loss slows the sender down rather than stopping it.
func throughput(t *testing.T, l *Link, delivered *atomic.Int64, d time.Duration) float64 {
	const window = 512
	msgs := make([][]byte, MaxBatch)
	for i := range msgs {
		msgs[i] = make([]byte, benchSize)
	}
	start, base := time.Now(), delivered.Load()
	var sent, last int64
	progress := time.Now()
	for time.Since(start) < d {
		got := delivered.Load() - base
		if got != last {
			last, progress = got, time.Now()
		}
		if sent-got > window {
			if time.Since(progress) < time.Millisecond {
				time.Sleep(20 * time.Microsecond)
				continue
			}
			sent, progress = got, time.Now() // written off as lost
		}
		n, err := l.SendBatch(msgs)
		if err != nil {
			t.Fatal(err)
		}
		sent += int64(n)
	}
	got := delivered.Load() - base
	return float64(got) * benchSize / time.Since(start).Seconds()
}

// flood sends junk initiations to one node from floodSources sockets at floodRate until stopped.
type flood struct {
	stopc chan struct{}
	done  chan struct{}
	sent  int
	took  time.Duration
}

func startFlood(t *testing.T, to *testNode) *flood {
	conns := make([]*net.UDPConn, floodSources)
	for i := range conns {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 0)
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(4096) // the cookie replies are nobody's concern here
		conns[i] = c
	}
	// A pool of junk: the responder cannot tell one random initiation from another.
	junk := make([][]byte, 4096)
	for i := range junk {
		junk[i] = junkInitiation(to.pub, true)
	}
	f := &flood{stopc: make(chan struct{}), done: make(chan struct{})}
	dst := to.LocalAddr()
	go func() {
		defer close(f.done)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		start := time.Now()
		for {
			select {
			case <-f.stopc:
				f.took = time.Since(start)
				return
			default:
			}
			due := int(time.Since(start).Seconds() * floodRate)
			for ; f.sent < due; f.sent++ {
				conns[f.sent%len(conns)].WriteToUDPAddrPort(junk[f.sent%len(junk)], dst)
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	t.Cleanup(func() { f.stop() })
	return f
}

// stop ends the flood and returns how many it sent and over how long.
func (f *flood) stop() (int, time.Duration) {
	select {
	case <-f.stopc:
	default:
		close(f.stopc)
	}
	<-f.done
	return f.sent, f.took
}
