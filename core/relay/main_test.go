package relay

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"text/tabwriter"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var report = flag.Bool("report", false, "run the forwarding benchmarks and print their table (make bench)")

// TestReport prints one relay's forwarding rate beside the crypto limit for the same work.
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	median := func(f func(*testing.B)) testing.BenchmarkResult {
		rs := []testing.BenchmarkResult{testing.Benchmark(f), testing.Benchmark(f), testing.Benchmark(f)}
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if rs[j].NsPerOp() < rs[i].NsPerOp() {
					rs[i], rs[j] = rs[j], rs[i]
				}
			}
		}
		return rs[1]
	}
	fwd, raw := median(BenchmarkForwardCell), median(BenchmarkForwardCellRaw)
	rate := func(r testing.BenchmarkResult) (float64, float64) {
		cells := float64(r.N) / r.T.Seconds()
		return cells, cells * float64(r.Bytes) / 1e6
	}
	fc, fm := rate(fwd)
	rc, rm := rate(raw)
	ratio := fm / rm
	verdict := "met"
	if ratio < 0.8 || fwd.AllocsPerOp() != 0 {
		verdict = "MISSED"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "relay forwarding, one core, full cells\t cells/s\t MB/s\t vs raw\t allocs/op\t target\t\n")
	fmt.Fprintf(w, "raw: link open + layer open + link seal\t %.0f\t %.0f\t \t %d\t \t\n", rc, rm, raw.AllocsPerOp())
	fmt.Fprintf(w, "relay engine, same crypto, no syscalls\t %.0f\t %.0f\t %.0f%%\t %d\t ≥80%%, 0 allocs %s\t\n", fc, fm, 100*ratio, fwd.AllocsPerOp(), verdict)
	w.Flush()
}
