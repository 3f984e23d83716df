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
	t.Logf("wireguard-go, one hop: %.0f Mbit/s, %.1f CPU-s per GB", res.BitsPerSecond/1e6, res.CPUSecondsPerGB)
	if res.BitsPerSecond < minRate {
		t.Errorf("%.1f Mbit/s through the tunnel: want more than %.0f", res.BitsPerSecond/1e6, minRate/1e6)
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
