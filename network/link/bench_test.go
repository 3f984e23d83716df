package link

import (
	"sync/atomic"
	"testing"
	"time"
)

// benchSize is a full cell as the circuit layer sends it: a 5-byte cell header and a 1408-byte body.
const benchSize = 1413

// sessionPair returns the two ends of one session, made by a real handshake.
func sessionPair(b testing.TB) (initiator, responder *session) {
	p := completeHandshake(b)
	i, err := newSession(nil, 11, 22, true, 0, &p.ikeys)
	if err != nil {
		b.Fatal(err)
	}
	r, err := newSession(nil, 22, 11, false, 0, &p.rkeys)
	if err != nil {
		b.Fatal(err)
	}
	return i, r
}

func TestSessionPairSealsAndOpens(t *testing.T) {
	i, r := sessionPair(t)
	var buf packetBuf
	pkt := i.seal(buf.data[:], &buf.nonce, 5, []byte("across"), 0)
	var nonce [12]byte
	msg, err := r.open(&nonce, pkt, 5)
	if err != nil || string(msg) != "across" {
		t.Fatalf("open: %q %v", msg, err)
	}
	if _, err := i.open(&nonce, i.seal(buf.data[:], &buf.nonce, 6, []byte("x"), 0), 6); err == nil {
		t.Fatal("a session opened its own packet: both directions share a key")
	}
}

func BenchmarkSeal(b *testing.B) {
	s, _ := sessionPair(b)
	var buf packetBuf
	msg := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	var counter uint64
	for b.Loop() {
		s.seal(buf.data[:], &buf.nonce, counter, msg, 0)
		counter++
	}
}

// BenchmarkOpen measures the receiver's per-packet crypto: authenticate and decrypt in place, then
// the replay window. Each packet is restored from a sealed copy first, since opening consumes it.
func BenchmarkOpen(b *testing.B) {
	i, r := sessionPair(b)
	var buf packetBuf
	sealed := append([]byte(nil), i.seal(buf.data[:], &buf.nonce, 0, make([]byte, benchSize), 0)...)
	work := make([]byte, len(sealed))
	var nonce [12]byte
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		copy(work, sealed)
		if _, err := r.open(&nonce, work, 0); err != nil {
			b.Fatal(err)
		}
		r.acceptCounter(0)
	}
}

// BenchmarkHandshake is one complete handshake on one core: initiation, response, and both sessions.
func BenchmarkHandshake(b *testing.B) {
	ikey, rkey := newLocalKey(newStatic(b)), newLocalKey(newStatic(b))
	eph := freshEphemeral(b)
	ts := makeTAI64N(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		ihs, init, err := newInitiatorHandshake(ikey, rkey.pub, 1, 0, ts, eph)
		if err != nil {
			b.Fatal(err)
		}
		rhs, err := readInitiation(rkey, &init)
		if err != nil {
			b.Fatal(err)
		}
		resp, rks, err := rhs.writeResponse(2)
		if err != nil {
			b.Fatal(err)
		}
		iks, err := ihs.readResponse(&resp)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := newSession(nil, 1, 2, true, 0, &iks); err != nil {
			b.Fatal(err)
		}
		if _, err := newSession(nil, 2, 1, false, 0, &rks); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkSend is Link.Send of a full cell to a node on loopback: seal plus the sendto system
// call, the cost a relay pays per forwarded cell.
func BenchmarkLinkSend(b *testing.B) {
	a := newTestNode(b)
	peer := newTestNode(b, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
	l := dial(b, a, peer)
	msg := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkSendBatch is Link.SendBatch of batches of MaxBatch full cells to a node on loopback:
// seal plus the sendmmsg system call (with UDP GSO, one datagram per batch), the cost a relay pays per
// forwarded cell when its scheduler has a batch for one link.
func BenchmarkLinkSendBatch(b *testing.B) { benchSendBatch(b, true) }

// BenchmarkLinkSendBatchWithoutGSO is BenchmarkLinkSendBatch with one datagram per cell.
func BenchmarkLinkSendBatchWithoutGSO(b *testing.B) { benchSendBatch(b, false) }

func benchSendBatch(b *testing.B, gso bool) {
	a := newTestNode(b, withOffload(gso, gso))
	peer := newTestNode(b, withConfig(func(c *Config) { c.OnMessage = func(*Link, []byte) {} }))
	l := dial(b, a, peer)
	msgs := make([][]byte, MaxBatch)
	for i := range msgs {
		msgs[i] = make([]byte, benchSize)
	}
	s0 := a.Stats()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(msgs) {
		if _, err := l.SendBatch(msgs[:min(len(msgs), b.N-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s := a.Stats()
	b.ReportMetric(float64(s.PacketsOut-s0.PacketsOut)/float64(s.WriteMsgs-s0.WriteMsgs), "pkts/dgram")
}

// BenchmarkLinkReceive is a stream of full cells from one node to another on loopback, sent with
// SendBatch: seal, sendmmsg, the receiver's socket reads, open, replay window and delivery, with UDP
// GSO and GRO where the kernel has them. The receiver's socket buffer is raised to 1 MiB, as a busy
// node's should be, and the sender keeps at most recvWindow messages in flight, so that the buffer
// never overflows and nothing is lost to the kernel.
func BenchmarkLinkReceive(b *testing.B) { benchReceive(b, true) }

// BenchmarkLinkReceiveWithoutOffload is BenchmarkLinkReceive with one datagram per cell, sent and read.
func BenchmarkLinkReceiveWithoutOffload(b *testing.B) { benchReceive(b, false) }

func benchReceive(b *testing.B, offload bool) {
	const recvWindow = 256
	// The sender blocks, rather than spins, while it waits for the receiver: with one P a spinning
	// goroutine would keep the netpoller from waking the reader until sysmon's next 10 ms pass.
	var delivered, target atomic.Int64
	progress := make(chan struct{}, 1)
	a := newTestNode(b, withOffload(offload, offload))
	peer := newTestNode(b, withOffload(offload, offload), withConfig(func(c *Config) {
		c.OnMessage = func(*Link, []byte) {
			if delivered.Add(1) >= target.Load() {
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}))
	if err := peer.conn.SetReadBuffer(1 << 20); err != nil {
		b.Fatal(err)
	}
	l := dial(b, a, peer)
	msgs := make([][]byte, MaxBatch)
	for i := range msgs {
		msgs[i] = make([]byte, benchSize)
	}
	timeout := time.NewTimer(time.Hour)
	defer timeout.Stop()
	wait := func(t int64) {
		target.Store(t)
		timeout.Reset(2 * time.Second)
		for delivered.Load() < t {
			select {
			case <-progress:
			case <-timeout.C:
				b.Fatalf("%d of %d messages delivered: lost in the socket buffer", delivered.Load(), t)
			}
		}
	}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	var sent int64
	for sent < int64(b.N) {
		k := min(int64(len(msgs)), int64(b.N)-sent)
		wait(sent + k - recvWindow)
		if _, err := l.SendBatch(msgs[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	wait(sent)
	b.StopTimer()
	s := peer.Stats()
	if s.ReadCalls > 0 {
		b.ReportMetric(float64(s.PacketsIn)/float64(s.ReadCalls), "pkts/read")
		b.ReportMetric(float64(s.PacketsIn)/float64(s.ReadMsgs), "pkts/dgram")
	}
}
