package testnet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/wgbaseline"
)

var report = flag.Bool("report", false, "measure the testnet with iperf3 and ping and print the table (make bench)")

func iperfRate(t *testing.T, n *Net, srvNS, addr string, seconds int) float64 {
	t.Helper()
	bps, err := n.Iperf(srvNS, addr, seconds)
	if err != nil {
		t.Fatal(err)
	}
	return bps
}

var rttRe = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)

func avgRTT(t *testing.T, n *Net, addr string) float64 {
	t.Helper()
	out, err := n.InClient("ping", "-c", "20", "-i", "0.05", "-q", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := rttRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rtt in %q", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// cpuTime adds up the user and system time of the given processes so far (from /proc; the clock
// ticks are USER_HZ, 100 on Linux).
func cpuTime(t *testing.T, pids []int) time.Duration {
	t.Helper()
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		utime, _ := strconv.Atoi(f[11])
		stime, _ := strconv.Atoi(f[12])
		total += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return total
}

// TestReport measures one TCP flow through the 3-hop tunnel against the same between the client and a
// relay's namespace without the tunnel (the same kind of veth and bridge path) and against a
// single-hop wireguard-go tunnel between two namespaces, all in this run; the CPU every MeshVPN
// process (5 relays, 2 exits, the client) spent per GB; and the ping RTT the tunnel adds.
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := start(t, ctx, Options{})
	const seconds = 5
	pids := n.PIDs()
	cpu0 := cpuTime(t, pids)
	tunnel := iperfRate(t, n, n.WebNamespace(), WebAddr, seconds)
	cpu := cpuTime(t, pids) - cpu0
	direct := iperfRate(t, n, n.Relays[0].Namespace(), n.Relays[0].Addr.String(), seconds)
	gb := tunnel * seconds / 8 / 1e9
	rttTunnel, rttDirect := avgRTT(t, n, WebAddr), avgRTT(t, n, n.Relays[0].Addr.String())
	wg, err := wgbaseline.Measure(ctx, seconds)
	if err != nil {
		t.Fatalf("wireguard-go baseline: %v", err)
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "testnet in namespaces, one TCP flow (iperf3 %d s)\t Mbit/s\t ratio\t\n", seconds)
	fmt.Fprintf(w, "client → 3-hop tunnel → exit NAT → web server\t %.0f\t \t\n", tunnel/1e6)
	fmt.Fprintf(w, "wireguard-go, one hop between two namespaces\t %.0f\t %.1f%% (goal ≥ 40%%)\t\n", wg.BitsPerSecond/1e6, 100*tunnel/wg.BitsPerSecond)
	fmt.Fprintf(w, "client → relay over the same veth/bridge, no tunnel\t %.0f\t %.1f%%\t\n", direct/1e6, 100*tunnel/direct)
	fmt.Fprintf(w, "CPU of all MeshVPN processes per GB through the tunnel\t %.1f s\t goal < 13\t\n", cpu.Seconds()/gb)
	fmt.Fprintf(w, "CPU of wireguard-go per GB (both ends)\t %.1f s\t \t\n", wg.CPUSecondsPerGB)
	fmt.Fprintf(w, "ping RTT: tunnel %.3f ms, direct %.3f ms, added\t %.3f ms\t \t\n", rttTunnel, rttDirect, rttTunnel-rttDirect)
	w.Flush()
}
