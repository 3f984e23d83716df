package wgbaseline

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func needRoot(t *testing.T) {
	t.Helper()
	_, ipErr := exec.LookPath("ip")
	_, iperfErr := exec.LookPath("iperf3")
	if os.Geteuid() == 0 && ipErr == nil && iperfErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, iproute2 and iperf3, and CI must run it")
	}
	t.Skip("needs root, iproute2 and iperf3")
}

func TestMeasure(t *testing.T) {
	needRoot(t)
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Measure(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Correctness only: the speed depends on the machine and its load (5 Mbit/s under -race on a busy
	// one), and make bench reports it beside MeshVPN's (testnet TestReport).
	t.Logf("wireguard-go, one hop: %.0f Mbit/s, %.1f CPU-s per GB, %.0f bytes received, %d through the tunnel", res.BitsPerSecond/1e6, res.CPUSecondsPerGB, res.Bytes, res.TunnelBytes)
	if res.Bytes <= 0 || res.BitsPerSecond <= 0 {
		t.Errorf("the iperf3 server received %.0f bytes (%.0f bit/s): the tunnel carried nothing", res.Bytes, res.BitsPerSecond)
	}
	if float64(res.TunnelBytes) < res.Bytes {
		t.Errorf("the receiving device took in %d bytes from its peer, less than the %.0f the server received: the flow went around the tunnel", res.TunnelBytes, res.Bytes)
	}
	if res.CPUSecondsPerGB <= 0 {
		t.Errorf("CPU per GB %v: want positive", res.CPUSecondsPerGB)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, Prefix()) {
			t.Errorf("namespace left behind: %s", line)
		}
	}
}
