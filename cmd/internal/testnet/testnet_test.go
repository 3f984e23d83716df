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
}
