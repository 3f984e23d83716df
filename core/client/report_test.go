package client_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

var report = flag.Bool("report", false, "measure circuit builds on loopback and print the table (make bench)")

// TestReport builds many 3-hop circuits through relays on loopback, one after another, and prints the
// median and 99th percentile build time (target: median at most 5 ms; a private Tor network takes 23 ms
// on this machine kind).
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	n := newNet(t, netOptions{relays: 5})
	for i := range 5 { // links up between every pair the builds use, as a running network has them
		n.build(i%5, (i+1)%5, (i+2)%5).Close()
	}
	const builds = 300
	var took []time.Duration
	for i := range builds {
		path := []int{i % 5, (i + 1) % 5, (i + 2) % 5}
		start := time.Now()
		c, err := n.client.Build(context.Background(), n.path(path...))
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		c.Close()
	}
	slices.Sort(took)
	median, p99 := took[len(took)/2], took[len(took)*99/100]
	verdict := "met"
	if median > 5*time.Millisecond {
		verdict = "MISSED"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "circuit build, 3 hops, loopback, links up\t median\t p99\t target\t\n")
	fmt.Fprintf(w, "%d builds, client and 5 relays in one process\t %.2f ms\t %.2f ms\t median ≤ 5 ms %s\t\n", builds,
		float64(median.Microseconds())/1000, float64(p99.Microseconds())/1000, verdict)
	w.Flush()

	// Datagram throughput through one circuit, everything in this process on two cores: the client, three
	// relays and the exit's receiver, with a window of 128 datagrams in flight (as a transport would).
	circ := n.build(0, 1, 2)
	const total = 40_000
	size := circ.MaxData()
	payload := datagram(0, size)
	n.countOnly.Store(true)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	for i := range total {
		for deadline := time.Now().Add(2 * time.Second); ; {
			if i-int(n.exitCount.Load()) <= 128 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
		if err := circ.Send(payload); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if n.exitCount.Load() >= total-10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	got := int(n.exitCount.Load())
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	gb := float64(got) * float64(size) / 1e9
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\ndatagrams through 3 hops, loopback, one process\t delivered\t MB/s\t CPU s per GB\t\n")
	fmt.Fprintf(w, "%d × %d bytes, window 128\t %d\t %.0f\t %.1f\t\n", total, size, got,
		gb*1000/elapsed.Seconds(), cpu.Seconds()/gb)
	w.Flush()
}
