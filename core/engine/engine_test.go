package engine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeTUN struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
}

func newFakeTUN() *fakeTUN {
	return &fakeTUN{in: make(chan []byte, 16), out: make(chan []byte, 16), closed: make(chan struct{})}
}

func (f *fakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case p := <-f.in:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	case <-f.closed:
		return 0, errors.New("closed")
	}
}

func (f *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		f.out <- append([]byte(nil), b[offset:]...)
	}
	return len(bufs), nil
}
func (f *fakeTUN) BatchSize() int { return 1 }
func (f *fakeTUN) Close() error   { f.once.Do(func() { close(f.closed) }); return nil }

type fakeCircuit struct{ sent chan []byte }

func (c *fakeCircuit) Send(d []byte) error { c.sent <- append([]byte(nil), d...); return nil }
func (c *fakeCircuit) SendBatch(ds [][]byte) (int, error) {
	for _, d := range ds {
		c.Send(d)
	}
	return len(ds), nil
}
func (c *fakeCircuit) MaxData() int          { return 1332 }
func (c *fakeCircuit) Done() <-chan struct{} { return nil }

func ipv4(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	return p
}

func waitStats(t *testing.T, e *Engine, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := e.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never matched: %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPacketsFollowTheCircuitAndNothingLeaksWithout(t *testing.T) {
	dev := newFakeTUN()
	e, err := New(dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	dev.in <- ipv4(100) // no circuit yet
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 1 })

	c := &fakeCircuit{sent: make(chan []byte, 16)}
	e.SetCircuit(c)
	dev.in <- ipv4(200)
	v6 := make([]byte, 60)
	v6[0] = 0x60
	dev.in <- v6
	dev.in <- ipv4(2000) // bigger than a cell carries
	s := waitStats(t, e, func(s Stats) bool { return s.PacketsOut == 1 && s.DropIPv6 == 1 && s.DropTooBig == 1 })
	if got := <-c.sent; len(got) != 200 {
		t.Fatalf("sent %d bytes", len(got))
	}
	if len(c.sent) != 0 {
		t.Fatalf("%d unexpected packets went out (stats %+v)", len(c.sent), s)
	}

	e.Deliver(ipv4(300))
	e.Deliver(v6)
	if got := <-dev.out; len(got) != 300 {
		t.Fatalf("delivered %d bytes", len(got))
	}
	waitStats(t, e, func(s Stats) bool { return s.PacketsIn == 1 && s.DropIPv6 == 2 })

	e.SetCircuit(nil)
	dev.in <- ipv4(100)
	waitStats(t, e, func(s Stats) bool { return s.DropNoCircuit == 2 })
}
