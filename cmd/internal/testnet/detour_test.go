package testnet

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRefusedFlowTakesADetour (issue 13): x1, the client's exit, refuses tcp/8080 and x2 allows it.
// A connection to port 8080 works all the same, through a second circuit to x2 (the web server sees
// x2's address), while port 80 stays on x1; status shows the detour. A port no exit allows (tcp/25:
// x1 refuses it, and x2's default policy too) still fails as a refusal (curl cannot connect), not by a
// timeout.
func TestRefusedFlowTakesADetour(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{ExitPolicy: map[string]string{"x1": "reject *:25\nreject *:" + WebAltPort + "\naccept *:*"}})
	alt := "http://" + WebAddr + ":" + WebAltPort + "/"
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil || !strings.Contains(out, "You came from 203.0.113.1:") {
		t.Fatalf("port 80 through x1: %q %v", out, err)
	}
	out, err := n.InClient("curl", "-sS", "--connect-timeout", "20", "-w", "connected after %{time_connect} s\n", alt)
	if err != nil || !strings.Contains(out, "You came from 203.0.113.2:") {
		t.Fatalf("port %s, which x1 refuses: curl exit %d %v\n%s\nwant it through x2 (203.0.113.2)", WebAltPort, exitCode(err), err, out)
	}
	t.Logf("the first connection to the refused port, through its detour: %s", out[strings.LastIndex(out, "connected"):])
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil || !strings.Contains(out, "You came from 203.0.113.1:") {
		t.Fatalf("port 80 left x1 after the detour: %q %v", out, err)
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.NameOf(s.Circuit.Hops[2].Identity) != "x1" || len(s.Detours) != 1 || !slices.Equal(s.Detours[0].Flows, []string{"tcp/" + WebAltPort}) ||
		!s.Detours[0].Up || n.NameOf(s.Detours[0].Path[2]) != "x2" {
		t.Fatalf("status: exit %s, detours %+v", s.Circuit.Hops[2].Name, s.Detours)
	}
	if s.Traffic.RefusalsHeld == 0 || s.Traffic.Detoured == 0 || s.Refused["tcp/"+WebAltPort] == 0 {
		t.Fatalf("status counts: held %d, detoured %d, refused %v", s.Traffic.RefusalsHeld, s.Traffic.Detoured, s.Refused)
	}
	// A second connection goes straight through the detour: nothing more is held back.
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", alt); err != nil || !strings.Contains(out, "You came from 203.0.113.2:") {
		t.Fatalf("second connection to %s: %q %v", WebAltPort, out, err)
	}
	if s2, err := n.Status(ctx); err != nil || s2.Traffic.RefusalsHeld != s.Traffic.RefusalsHeld {
		t.Fatalf("held %d then %d: the detour in place should take the flow at once (%v)", s.Traffic.RefusalsHeld, s2.Traffic.RefusalsHeld, err)
	}

	// Both exits refuse tcp/25 (the default policy): the refusal reaches the program.
	out, err = n.InClient("curl", "-sS", "--connect-timeout", "20", "http://"+WebAddr+":25/")
	if code := exitCode(err); code != 7 {
		t.Fatalf("curl to a port no exit allows: exit %d (want 7, could not connect), %v\n%s", code, err, out)
	}
	if s, err = n.Status(ctx); err != nil || !slices.Contains(s.NoExitAllows, "tcp/25") || len(s.Detours) != 1 || len(s.Detours[0].Flows) != 1 {
		t.Fatalf("status after tcp/25: no exit allows %v, detours %+v, %v", s.NoExitAllows, s.Detours, err)
	}
	if out, err := n.clientCmd("status"); err != nil || !strings.Contains(out, "tcp/"+WebAltPort+" through") {
		t.Fatalf("status text says nothing of the detour: %v\n%s", err, out)
	}
}

// TestNoDetourRefusesAtOnce: with detour = false, the connection x1 refuses fails at once.
func TestNoDetourRefusesAtOnce(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NoDetour: true, ExitPolicy: map[string]string{"x1": "reject *:" + WebAltPort + "\naccept *:*"}})
	out, err := n.InClient("curl", "-sS", "--connect-timeout", "20", "http://"+WebAddr+":"+WebAltPort+"/")
	if code := exitCode(err); code != 7 {
		t.Fatalf("curl to the port x1 refuses without detours: exit %d (want 7), %v\n%s", code, err, out)
	}
	if s, err := n.Status(ctx); err != nil || len(s.Detours) != 0 || s.Traffic.RefusalsHeld != 0 {
		t.Fatalf("detours %+v held %d with detour = false (%v)", s.Detours, s.Traffic.RefusalsHeld, err)
	}
}
