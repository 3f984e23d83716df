package testnet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReport measures one TCP flow through the 3-hop tunnel against the same between the client and a
// relay's namespace without the tunnel (the same kind of veth and bridge path), the CPU every MeshVPN
// node spent per GB (they all run in this process; iperf3 does not), and the ping RTT the tunnel adds.
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Build(ctx, [cell.TokenLen]byte{}, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	const seconds = 5
	cpu0 := cpuTime()
	tunnel := iperfRate(t, n, n.Prefix+"-web", WebAddr, seconds)
	cpu := cpuTime() - cpu0
	direct := iperfRate(t, n, n.NodeNamespace(0), n.Relays[0].Addr.String(), seconds)
	gb := tunnel * seconds / 8 / 1e9
	rttTunnel, rttDirect := avgRTT(t, n, WebAddr), avgRTT(t, n, n.Relays[0].Addr.String())

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "testnet in namespaces, one TCP flow (iperf3 %d s)\t Mbit/s\t ratio\t\n", seconds)
	fmt.Fprintf(w, "client → 3-hop tunnel → exit NAT → web server\t %.0f\t %.1f%%\t\n", tunnel/1e6, 100*tunnel/direct)
	fmt.Fprintf(w, "client → relay over the same veth/bridge, no tunnel\t %.0f\t \t\n", direct/1e6)
	fmt.Fprintf(w, "CPU of all MeshVPN nodes per GB through the tunnel\t %.1f s\t goal < 13\t\n", cpu.Seconds()/gb)
	fmt.Fprintf(w, "ping RTT: tunnel %.3f ms, direct %.3f ms, added\t %.3f ms\t \t\n", rttTunnel, rttDirect, rttTunnel-rttDirect)
	w.Flush()
}
