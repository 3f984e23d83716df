package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// binDir holds the meshvpn-exit-node and meshvpn-client the tests run, built for this test run (with
// the race detector when the tests have it).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meshvpn-testnet-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/meshvpn/meshvpn/cmd/meshvpn-exit-node", "github.com/meshvpn/meshvpn/cmd/meshvpn-client",
		"github.com/meshvpn/meshvpn/cmd/meshvpn-dht-bootstrap", "github.com/meshvpn/meshvpn/cmd/meshvpn-discovery")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binaries: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}
