package testnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The web server's /stream?rate=BYTES_PER_SECOND&seconds=N sends rate×N bytes of a fixed pattern
// (StreamFill), paced by the sender at rate: one long-lived TCP connection through the tunnel, for as
// long as a soak runs. Every byte the receiver gets can be checked against the pattern by its offset.
const (
	// StreamMaxSeconds caps a stream's length in time.
	StreamMaxSeconds = 2 * 60 * 60
	// StreamMaxRate caps a stream's rate, in bytes per second.
	StreamMaxRate = 64 << 20
)

// splitmix64 is the pattern's generator: word w of a stream is splitmix64(w).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// StreamFill fills b with the stream's bytes from offset off on. Each 8-byte word of the stream is a
// hash of its index, so a lost, repeated or reordered piece of the stream shows at its offset.
func StreamFill(b []byte, off int64) {
	var word [8]byte
	w := uint64(off) / 8
	binary.LittleEndian.PutUint64(word[:], splitmix64(w))
	for i := range b {
		o := uint64(off) + uint64(i)
		if o/8 != w {
			w = o / 8
			binary.LittleEndian.PutUint64(word[:], splitmix64(w))
		}
		b[i] = word[o%8]
	}
}

// serveStream is /stream.
func serveStream(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rate, err1 := strconv.ParseInt(q.Get("rate"), 10, 64)
	secs, err2 := strconv.ParseInt(q.Get("seconds"), 10, 64)
	if err1 != nil || err2 != nil || rate < 1 || rate > StreamMaxRate || secs < 1 || secs > StreamMaxSeconds {
		http.Error(rw, fmt.Sprintf("want /stream?rate=1…%d&seconds=1…%d", StreamMaxRate, StreamMaxSeconds), http.StatusBadRequest)
		return
	}
	total := rate * secs
	rw.Header().Set("Content-Type", "application/octet-stream")
	rw.Header().Set("Content-Length", strconv.FormatInt(total, 10))
	// About ten writes a second, each flushed: the bytes leave when they are due, not in a burst.
	chunk := min(max(rate/10, 1), 64<<10)
	buf := make([]byte, chunk)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for off := int64(0); off < total; {
		n := min(chunk, total-off)
		StreamFill(buf[:n], off)
		if _, err := rw.Write(buf[:n]); err != nil {
			return
		}
		if f, ok := rw.(http.Flusher); ok {
			f.Flush()
		}
		off += n
		due := start.Add(time.Duration(float64(off) / float64(rate) * float64(time.Second)))
		timer.Reset(time.Until(due))
		select {
		case <-r.Context().Done():
			return
		case <-timer.C:
		}
	}
}

// StreamCheck checks what a receiver got of a stream, byte by byte against the pattern, and times
// its arrival. It is an io.Writer.
type StreamCheck struct {
	Bytes int64
	// BadAt is the offset of the first byte that is not the pattern's (-1: none).
	BadAt    int64
	Started  time.Time
	LastByte time.Time
	// LongestStall is the longest time without bytes (between reads, or from the start to the first),
	// and StallFrom when it began.
	LongestStall time.Duration
	StallFrom    time.Time
	want         []byte
}

// NewStreamCheck returns a check of a stream that starts now.
func NewStreamCheck() *StreamCheck { return &StreamCheck{BadAt: -1, Started: time.Now()} }

func (c *StreamCheck) Write(b []byte) (int, error) { return c.write(b, time.Now()), nil }

func (c *StreamCheck) write(b []byte, now time.Time) int {
	last := c.LastByte
	if last.IsZero() {
		last = c.Started
	}
	if gap := now.Sub(last); gap > c.LongestStall {
		c.LongestStall, c.StallFrom = gap, last
	}
	if len(b) == 0 {
		return 0
	}
	c.LastByte = now
	if c.BadAt < 0 {
		if cap(c.want) < len(b) {
			c.want = make([]byte, len(b))
		}
		want := c.want[:len(b)]
		StreamFill(want, c.Bytes)
		for i := range b {
			if b[i] != want[i] {
				c.BadAt = c.Bytes + int64(i)
				break
			}
		}
	}
	c.Bytes += int64(len(b))
	return len(b)
}

// Stream is one /stream download by curl in the client's namespace, through the tunnel.
type Stream struct {
	Rate, Seconds int64
	mu            sync.Mutex
	check         *StreamCheck
	ended         time.Time
	exitCode      int
	stderr        string
	err           error
	done          chan struct{}
}

// StreamState is what a Stream has seen so far.
type StreamState struct {
	Want, Bytes   int64
	BadAt         int64
	Started       time.Time
	LastByte      time.Time
	LongestStall  time.Duration
	StallFrom     time.Time
	Ended         time.Time // zero while it runs
	ExitCode      int
	Stderr        string
	Err           string // why the stream failed ("" while it runs, or if it got every byte right)
	Done, Success bool
}

// locked is the Stream's io.Writer for curl's output.
type lockedCheck struct{ s *Stream }

func (l lockedCheck) Write(b []byte) (int, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.check.Write(b)
}

// StartStream starts curl in the client's namespace on the web server's /stream at rate bytes per
// second for seconds; curl gives up after limit (seconds plus a margin is sensible), or when nothing
// has come for 30 s: a connection that stalls that long is lost. The stream runs until it ends, fails
// or ctx ends.
func (n *Net) StartStream(ctx context.Context, rate, seconds int64, limit time.Duration) *Stream {
	s := &Stream{Rate: rate, Seconds: seconds, check: NewStreamCheck(), done: make(chan struct{})}
	url := fmt.Sprintf("http://%s/stream?rate=%d&seconds=%d", WebAddr, rate, seconds)
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cl.name, "curl", "-sS",
		"--max-time", strconv.Itoa(int(limit.Seconds())), "--speed-limit", "1", "--speed-time", "30", url)
	cmd.Stdout, cmd.Stderr = lockedCheck{s}, &stderr
	go func() {
		defer close(s.done)
		err := cmd.Run()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ended = time.Now()
		s.check.write(nil, s.ended) // a stream that died stalled from its last byte on
		s.stderr = strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.exitCode = ee.ExitCode()
		}
		want := rate * seconds
		switch {
		case err != nil:
			s.err = fmt.Errorf("curl: %v: %s", err, s.stderr)
		case s.check.Bytes != want:
			s.err = fmt.Errorf("%d of %d bytes", s.check.Bytes, want)
		}
		if s.check.BadAt >= 0 && s.err == nil {
			s.err = fmt.Errorf("byte %d is not the pattern's", s.check.BadAt)
		}
	}()
	return s
}

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// State returns what the stream has seen so far.
func (s *Stream) State() StreamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.check
	st := StreamState{
		Want: s.Rate * s.Seconds, Bytes: c.Bytes, BadAt: c.BadAt, Started: c.Started, LastByte: c.LastByte,
		LongestStall: c.LongestStall, StallFrom: c.StallFrom, Ended: s.ended, ExitCode: s.exitCode, Stderr: s.stderr,
	}
	if !s.ended.IsZero() {
		st.Done = true
		st.Success = s.err == nil
		if s.err != nil {
			st.Err = s.err.Error()
		}
	}
	return st
}
