package testnet

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
)

func needRoot(t *testing.T) {
	t.Helper()
	_, ipErr := exec.LookPath("ip")
	_, curlErr := exec.LookPath("curl")
	if os.Geteuid() == 0 && ipErr == nil && curlErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, iproute2 and curl, and CI must run it")
	}
	t.Skip("needs root, iproute2 and curl")
}

func TestTrafficThroughTheTestnet(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		n.Close()
		if left := n.Leftovers(); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
	}()
	if _, err := n.Build(ctx, [cell.TokenLen]byte{}, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	exitWeb := "203.0.113.1"
	if !strings.Contains(out, "You came from "+exitWeb+":") {
		t.Fatalf("the server saw the wrong source: %q", out)
	}
	out, err = n.InClient("sh", "-c", "curl -sS --max-time 30 http://"+WebAddr+"/big | sha256sum")
	if err != nil {
		t.Fatal(err)
	}
	want := n.Web.BigSum()
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("10 MB download checksum %s, want %x", got, want)
	}
	if _, err := n.InClient("ping", "-c", "2", "-i", "0.2", "-W", "2", WebAddr); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
	// The exit's own address, a private LAN and the cloud metadata address are refused by the exit
	// (with an ICMP error, so curl fails at once) and counted.
	exit := n.Relays[5].Exit
	before := exit.Stats().DropPolicy
	for _, dst := range []string{"10.8.0.1", "192.168.1.1", "169.254.169.254"} {
		if out, err := n.InClient("curl", "-sS", "--max-time", "5", "http://"+dst+"/"); err == nil {
			t.Fatalf("reached %s through the exit: %q", dst, out)
		}
	}
	if got := exit.Stats().DropPolicy - before; got < 3 {
		t.Fatalf("the exit counted %d refused packets, want at least 3", got)
	}
}

// TestDownloadSurvivesAMiddleRelayDying kills the middle relay during a slow download: the client
// rebuilds a circuit to the same exit, the exit keeps the session, and the download completes over the
// same TCP connection with the right checksum.
func TestDownloadSurvivesAMiddleRelayDying(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Build(ctx, [cell.TokenLen]byte{}, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	n.KeepUp()
	done := make(chan string, 1)
	go func() {
		// 10 MB sent at 2 MB/s: about five seconds, plenty of time to kill a relay in the middle of it.
		out, err := n.InClient("sh", "-c", "curl -sS --max-time 60 'http://"+WebAddr+"/big?rate=2000000' | sha256sum")
		if err != nil {
			out = "error: " + err.Error()
		}
		done <- out
	}()
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	if err := n.Kill(1); err != nil {
		t.Fatal(err)
	}
	var out string
	select {
	case out = <-done:
	case <-time.After(70 * time.Second):
		t.Fatal("the download never finished")
	}
	want := n.Web.BigSum()
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("download after the reroute: %q, want sha256 %x", out, want)
	}
	rr := n.Reroutes()
	if len(rr) != 1 || !rr[0].SameSession || rr[0].Path[1] == 1 {
		t.Fatalf("reroutes: %+v", rr)
	}
	// Most of the file crossed the new middle: about 3.5 s of 2 MB/s is some 2,500 full cells.
	if cells := n.Relays[rr[0].Path[1]].Relay.Stats().CellsIn; cells < 1000 {
		t.Fatalf("the new middle carried only %d cells: the download did not really continue over it", cells)
	}
	t.Logf("middle killed; the client knew %v later (%v), rebuilt through %v in %v, same exit session",
		rr[0].Died.Sub(killed).Round(time.Millisecond), rr[0].Why, rr[0].Path, rr[0].Rebuilt.Sub(rr[0].Died).Round(time.Millisecond))
}
