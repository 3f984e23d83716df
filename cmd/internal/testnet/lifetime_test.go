package testnet

import (
	"context"
	"fmt"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// switchSeen is one circuit replacement as a flow through it saw it.
type switchSeen struct {
	At          time.Duration // into the flow
	Gap         time.Duration // the longest stretch of intervals that carried nothing around it
	Retransmits int64         // in the second around it
	SameSession bool
}

// flowAcrossReplacements runs an iperf3 flow of seconds and returns the flow and what each circuit
// replacement during it did to it. It fails the test on a broken connection (a reset ends iperf3 with
// an error), on a circuit that died instead of being replaced, and on a replacement that lost the
// exit session.
func flowAcrossReplacements(t *testing.T, ctx context.Context, n *Net, seconds int, reverse bool) (Flow, []switchSeen) {
	t.Helper()
	before, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	flow, err := n.IperfFlow(ctx, seconds, interval, reverse)
	if err != nil {
		t.Fatalf("the flow across circuit replacements broke: %v\nclient log:\n%s", err, tail(n.Log("client"), 40))
	}
	after, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Reroutes) != len(before.Reroutes) {
		t.Fatalf("a circuit died during the flow instead of being replaced: %+v", after.Reroutes[len(before.Reroutes):])
	}
	var seen []switchSeen
	for _, r := range after.Replacements {
		at := r.At.Sub(flow.Began)
		if at < 0 || at > time.Duration(seconds)*time.Second {
			continue
		}
		if !r.SameSession {
			t.Fatalf("the replacement at %v lost the exit session", at)
		}
		seen = append(seen, switchSeen{At: at, Gap: flow.Gap(at-time.Second, at+time.Second),
			Retransmits: flow.RetransmitsIn(at-500*time.Millisecond, at+500*time.Millisecond), SameSession: true})
	}
	if want := int(after.Replaced - before.Replaced); len(seen) < want-1 {
		t.Fatalf("%d replacements, %d of them seen in the flow", want, len(seen))
	}
	return flow, seen
}

func tail(s string, lines int) string {
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			if n++; n > lines {
				return s[i+1:]
			}
		}
	}
	return s
}

// TestCircuitLifetimeUnderAFlow: the client replaces its circuit every 8 s (max_circuit_lifetime, make
// before break, re-attaching its exit session) while layer keys ratchet every 3 s, under a TCP flow
// each way through the real daemons. The flows' connections survive every switch (no reset), no
// circuit dies, each switch keeps the session, guard and exit.
func TestCircuitLifetimeUnderAFlow(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := start(t, ctx, Options{RatchetEvery: 3 * time.Second, CircuitLifetime: 8 * time.Second})
	for _, reverse := range []bool{false, true} {
		flow, seen := flowAcrossReplacements(t, ctx, n, 20, reverse)
		if len(seen) < 2 {
			t.Fatalf("reverse=%v: %d replacements in a 20 s flow with an 8 s lifetime, want at least 2", reverse, len(seen))
		}
		for _, s := range seen {
			t.Logf("reverse=%v: switch at %v: flow stood still %v, %d retransmits around it", reverse, s.At.Round(time.Millisecond), s.Gap, s.Retransmits)
		}
		t.Logf("reverse=%v: %d bytes, %d retransmits in all", reverse, flow.Bytes, flow.Retransmits)
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkReplacementPaths(t, s)
}

// checkReplacementPaths: every replacement kept the guard and the exit of the circuit before it.
func checkReplacementPaths(t *testing.T, s clientd.Status) {
	t.Helper()
	for i := 1; i < len(s.Replacements); i++ {
		prev, cur := s.Replacements[i-1].Path, s.Replacements[i].Path
		if prev[0] != cur[0] || prev[len(prev)-1] != cur[len(cur)-1] {
			t.Fatalf("a replacement changed guard or exit: %v then %v", prev, cur)
		}
	}
}

// TestReportCircuitLifetime is make bench's figure for issue 12 item 3: a 60 s iperf3 flow each way with
// a 5 s ratchet and a 15 s circuit lifetime, and what each switch cost the flow.
func TestReportCircuitLifetime(t *testing.T) {
	if !*report {
		t.Skip("run with -report (make bench)")
	}
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := start(t, ctx, Options{RatchetEvery: 5 * time.Second, CircuitLifetime: 15 * time.Second})
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "circuit replaced every 15 s, keys ratcheted every 5 s, one TCP flow (iperf3 60 s)\t switch at\t flow still\t retransmits ±0.5 s\t\n")
	for _, reverse := range []bool{false, true} {
		flow, seen := flowAcrossReplacements(t, ctx, n, 60, reverse)
		dir := "upload"
		if reverse {
			dir = "download"
		}
		for _, s := range seen {
			rt := fmt.Sprint(s.Retransmits)
			if reverse {
				rt = "(sender is the server)"
			}
			fmt.Fprintf(w, "%s: switch (same session)\t %.1f s\t %v (limit: no reset; goal < 200 ms)\t %s\t\n", dir, s.At.Seconds(), s.Gap, rt)
		}
		fmt.Fprintf(w, "%s: whole flow, %d switches\t \t %.0f Mbit/s\t %d in all\t\n", dir, len(seen), float64(flow.Bytes)*8/60/1e6, flow.Retransmits)
	}
	w.Flush()
}
