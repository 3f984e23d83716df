package relay

import (
	"bufio"
	crand "crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// discardLink is a neighbour that takes every cell and keeps none.
type discardLink struct{ fakeLink }

func (l *discardLink) Send([]byte) error                    { return nil }
func (l *discardLink) SendBatch(msgs [][]byte) (int, error) { return len(msgs), nil }

// procStatus returns a field of /proc/self/status in bytes (VmRSS, VmHWM), or 0 where there is none.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestReportIdleCircuits opens 100,000 circuits on one relay the way clients do — a CREATE each, with
// the full handshake, from 10 neighbours — sends one cell back on each (so each has its queue on its
// link's scheduler, as a circuit that carried traffic has), and reports the process's memory beside
// the design's bound (a relay keeps 100,000 idle circuits in under 1 GiB).
func TestReportIdleCircuits(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	const circuits, links = 100_000, 10
	runtime.GC()
	rssBefore := procStatus("VmRSS")
	r := newTestRelay(t, Config{})
	info := r.Info()
	_, hs, err := ntor.NewClient(crand.Reader, info.Identity, info.Onion, onion.DefaultOffer())
	if err != nil {
		t.Fatal(err)
	}
	// One handshake message for all: the relay keeps no record of handshakes it answered, so each
	// CREATE costs it a full handshake and a fresh set of keys all the same.
	create := make([]byte, r.cfg.Sizes[0])
	if err := (&cell.CreateBody{Depth: 1, Handshake: hs}).Encode(create); err != nil {
		t.Fatal(err)
	}
	ls := make([]*discardLink, links)
	for i := range ls {
		ls[i] = &discardLink{*newFakeLink(false)}
	}
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < circuits; i += workers {
				l := ls[i%links]
				job := createJob{l: l, id: idFrom(r, l, i/links)}
				copy(job.body[:], create)
				r.create(job)
			}
		}()
	}
	wg.Wait()
	if open := r.Stats().CircuitsOpen; open != circuits {
		t.Fatalf("%d circuits open, want %d", open, circuits)
	}
	r.tab.each(func(c *circuit) { _ = c.exit.Send([]byte("x")) })
	for r.queued.Load() > 0 {
		runtime.Gosched()
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, peak := procStatus("VmRSS"), procStatus("VmHWM")
	const limit = 1 << 30
	verdict := "met"
	if rss >= limit || peak >= limit {
		verdict = "MISSED"
	}
	mib := func(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "100,000 idle circuits on one relay (real handshakes, 10 links)\t RSS\t peak RSS\t Go heap in use\t per circuit\t limit\t\n")
	fmt.Fprintf(w, "whole test process, after a GC\t %s\t %s\t %s\t %.1f KiB\t < 1 GiB RSS %s\t\n",
		mib(rss), mib(peak), mib(ms.HeapInuse), float64(rss-rssBefore)/circuits/1024, verdict)
	w.Flush()
	runtime.KeepAlive(r)
}
