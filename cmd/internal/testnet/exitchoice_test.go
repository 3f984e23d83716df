package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// client runs meshvpn-client in the client's namespace against its daemon.
func (n *Net) clientCmd(args ...string) (string, error) {
	return n.InClient(append(append([]string{n.Bin("meshvpn-client")}, args...), "--control-socket", n.Socket)...)
}

// exitCode is the exit status of a command InClient ran, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// TestSetExitWhileRunning: the client is up through x1. `meshvpn-client exits` lists both exits;
// requests that cannot be followed are refused with the reason and change nothing; `set-exit` to x2
// moves the running daemon: a download through x1 is lost (as documented), the web server then sees
// x2's address, and status reports the move. A connection to a port x2's policy refuses (tcp/25) fails
// at once in the client's kernel — the exit's ICMP administratively prohibited reached it: curl cannot
// connect rather than time out — and status counts it by port.
func TestSetExitWhileRunning(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{})
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil || !strings.Contains(out, "You came from 203.0.113.1:") {
		t.Fatalf("through x1: %q %v", out, err)
	}

	out, err := n.clientCmd("exits", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l clientd.ExitList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("exits --json: %v\n%s", err, out)
	}
	inUse := map[string]bool{}
	for _, e := range l.Exits {
		inUse[n.NameOf(e.Identity)] = e.InUse
		if e.State != "running" || !strings.Contains(e.Ports, "tcp=") {
			t.Errorf("exit %+v", e)
		}
	}
	if l.Source != "directory" || len(l.Exits) != 2 || !inUse["x1"] || inUse["x2"] {
		t.Fatalf("exits: %+v", l)
	}
	if out, err = n.clientCmd("exits", "--port", "tcp/25"); err != nil || !strings.Contains(out, "No exit of the directory allows tcp/25") {
		t.Fatalf("exits --port tcp/25 (the default policy refuses 25): %q %v", out, err)
	}

	for _, c := range []struct{ args, want string }{
		{"country:", "nothing after the colon"},
		{"nosuch", `no relay in the consensus is named "nosuch"`},
		{n.Node("r1").Entry.Identity.String(), "not an exit"},
		{"country:DE", "no usable exit in country DE"},
	} {
		out, err := n.clientCmd("set-exit", c.args)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("set-exit %s: %v\n%s\nwant an error saying %q", c.args, err, out, c.want)
		}
	}
	if s, err := n.Status(ctx); err != nil || len(s.ExitMoves) != 0 || n.NameOf(s.Circuit.Hops[2].Identity) != "x1" {
		t.Fatalf("refused requests moved the client: %+v %v", s.ExitMoves, err)
	}

	// A download through x1, under way when the client moves to x2: 10 s at its rate, were it not lost.
	// Its server's packets go to x1, which has no circuit to the client any more; the client, which
	// only acknowledges, sends nothing that could draw a reset: it stalls until curl gives up.
	lost := make(chan error, 1)
	go func() {
		_, err := n.InClient("curl", "-sS", "-o", "/dev/null", "--max-time", "25", "http://"+WebAddr+"/big?rate=1000000")
		lost <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	// By its operator's name, which the descriptor carries and status shows (one relay alone has it).
	x2 := "x2"
	if out, err = n.clientCmd("set-exit", x2); err != nil || !strings.Contains(out, "Moved to exit x2") {
		t.Fatalf("set-exit x2: %v\n%s", err, out)
	}
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil || !strings.Contains(out, "You came from 203.0.113.2:") {
		t.Fatalf("after set-exit x2: %q %v", out, err)
	}
	if err := <-lost; err == nil {
		t.Fatal("a download through x1 went on after the move to x2: it should be lost (docs/client.md)")
	} else {
		t.Logf("the download through x1: curl exit %d", exitCode(err))
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "connected" || n.NameOf(s.Circuit.Hops[2].Identity) != "x2" || len(s.ExitMoves) != 1 || n.NameOf(s.ExitMoves[0].From) != "x1" ||
		n.NameOf(s.ExitMoves[0].To) != "x2" || !s.Exit.Pinned || s.Exit.Asked != x2 {
		t.Fatalf("status after set-exit: %s, exit %s, moves %+v, choice %+v", s.State, s.Circuit.Hops[2].Name, s.ExitMoves, s.Exit)
	}
	if out, err = n.clientCmd("status"); err != nil || !strings.Contains(out, "exit moved") || !strings.Contains(out, "connections through x1 were lost") ||
		!strings.Contains(out, "exit   x2 ") {
		t.Fatalf("status says nothing of the move: %v\n%s", err, out)
	}

	// Refused by x2's policy: the client's kernel gets the ICMP error and curl fails at once (exit 7,
	// could not connect), not after its timeout (28).
	out, err = n.InClient("curl", "-sS", "--connect-timeout", "20", "http://"+WebAddr+":25/")
	if code := exitCode(err); code != 7 {
		t.Fatalf("curl to a refused port: exit %d (want 7: the ICMP error reached the client's kernel), %v\n%s", code, err, out)
	}
	s, err = n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Refused["tcp/25"] < 1 {
		t.Fatalf("refusals in status: %v", s.Refused)
	}
	if log := n.Log("client"); strings.Contains(log, WebAddr) {
		t.Fatalf("the client's log names a destination:\n%s", log)
	}
}
