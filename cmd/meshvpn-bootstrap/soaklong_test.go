package main

import (
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
)

var testLimits = longLimits{
	MaxGap: 5 * time.Second, DirAge: 12 * time.Second, Warmup: 2 * time.Minute,
	MemGrowth: 0.5, MemSlack: 16 << 20, Near: 10 * time.Second,
}

// passingRun is a made-up 10-minute soak that meets every criterion: three kills, each rerouted
// 2 s later with a 900 ms gap, two intact streams, requests every 200 ms, a fresh directory, one
// guard, memory flat.
func passingRun() *longRecord {
	t0 := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	r := &longRecord{Start: t0, End: t0.Add(10 * time.Minute), Duration: 10 * time.Minute, KillEvery: 3 * time.Minute,
		DirRefresh: 2 * time.Second, Planned: 3}
	for i := 1; i <= 3; i++ {
		k := t0.Add(time.Duration(i) * 3 * time.Minute)
		r.Kills = append(r.Kills, longKill{At: k, Node: "r3", Path: []string{"r1", "r3", "x1"}, State: "connected", Restarted: k.Add(20 * time.Second)})
		r.Reroutes = append(r.Reroutes, longReroute{Died: k.Add(2 * time.Second), Gap: 900 * time.Millisecond, Why: "link dead",
			Path: []string{"r1", "r4", "x1"}, SameSession: true})
	}
	for _, id := range []string{"s1", "s2"} {
		r.Streams = append(r.Streams, longStream{ID: id, StreamState: testnet.StreamState{Want: 120e6, Bytes: 120e6, BadAt: -1,
			Started: t0, Ended: r.End, Done: true, Success: true}})
	}
	for t := t0; t.Before(r.End); t = t.Add(200 * time.Millisecond) {
		r.HTTP = append(r.HTTP, longProbe{At: t, Took: 3 * time.Millisecond})
	}
	for t := t0.Add(30 * time.Second); t.Before(r.End); t = t.Add(time.Minute) {
		r.Iperf = append(r.Iperf, longIperf{At: t, Bps: 500e6})
	}
	for t := t0; !t.After(r.End); t = t.Add(time.Second) {
		r.Status = append(r.Status, longStatus{At: t, State: "connected", Guard: "r1", Fetched: t.Add(-1500 * time.Millisecond)})
	}
	for t := t0; !t.After(r.End); t = t.Add(10 * time.Second) {
		r.Memory = append(r.Memory, longMem{At: t, Name: "client", PID: 100, RSS: 40 << 20},
			longMem{At: t, Name: "r1", PID: 101, RSS: 30<<20 + int64(t.Sub(t0)/time.Minute)<<20}) // +1 MB a minute: within the slack
	}
	return r
}

func failing(rep longReport) []string {
	var names []string
	for _, c := range rep.Checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return names
}

func TestJudgePassesAGoodRun(t *testing.T) {
	r := passingRun()
	rep := judge(r, testLimits)
	if !rep.Pass {
		t.Fatalf("a good run fails: %v", rep.Checks)
	}
	if len(rep.Reroutes) != 3 || rep.Unexpected != 0 || rep.Reroutes[0].Kill != 0 || rep.Reroutes[2].Detection != 2*time.Second {
		t.Fatalf("reroutes matched wrongly: %+v", rep.Reroutes)
	}
	if rep.DirMax != 1500*time.Millisecond || rep.DirP99 != 1500*time.Millisecond {
		t.Fatalf("directory age max %v p99 %v", rep.DirMax, rep.DirP99)
	}
	if len(rep.Memory) != 2 || !rep.Memory[0].Judged || rep.Memory[1].First != 32<<20 || rep.Memory[1].Last != 40<<20 {
		t.Fatalf("memory: %+v", rep.Memory)
	}
	var b strings.Builder
	printLongReport(&b, r, testLimits, rep)
	if !strings.HasSuffix(b.String(), "PASS\n") {
		t.Fatalf("the report does not end in PASS:\n%s", b.String())
	}
}

// Each broken criterion fails its own check, and only that one.
func TestJudgeFailsEachCriterion(t *testing.T) {
	for _, tc := range []struct {
		check string
		spoil func(r *longRecord)
	}{
		{"every reroute gap under 5s", func(r *longRecord) { r.Reroutes[1].Gap = 5 * time.Second }},
		{"the exit kept the session", func(r *longRecord) { r.Reroutes[2].SameSession = false }},
		{"every kill rerouted", func(r *longRecord) { r.Reroutes = r.Reroutes[:2] }},
		{"every kill rerouted", func(r *longRecord) { r.Kills = r.Kills[:2]; r.Reroutes = r.Reroutes[:2] }}, // a planned kill that never happened
		{"no connection lost", func(r *longRecord) {
			r.Streams[1].Success, r.Streams[1].Bytes, r.Streams[1].Err = false, 50e6, "curl: exit status 18"
		}},
		{"no connection lost", func(r *longRecord) { r.Streams = nil }},
		{"traffic between reroutes", func(r *longRecord) { r.HTTP[100].Err = "timeout" }}, // at +20 s, nowhere near a kill
		{"traffic between reroutes", func(r *longRecord) { r.Iperf[0].Err = "iperf3: timeout" }},
		{"directory age at most 12s", func(r *longRecord) { r.Status[300].Fetched = r.Status[300].At.Add(-13 * time.Second) }},
		{"directory age at most 12s", func(r *longRecord) { r.Status[300].Fetched = time.Time{} }},
		{"guard unchanged", func(r *longRecord) {
			for i := 400; i < len(r.Status); i++ {
				r.Status[i].Guard = "r2"
			}
		}},
		{"memory flat", func(r *longRecord) {
			for i := range r.Memory {
				if r.Memory[i].Name == "client" {
					r.Memory[i].RSS = 40<<20 + int64(r.Memory[i].At.Sub(r.Start)/time.Second)<<16 // +3.75 MB a minute
				}
			}
		}},
		{"memory flat", func(r *longRecord) { r.Memory = nil }},
		{"ran its whole time", func(r *longRecord) { r.Interrupted = true }},
		{"the test itself", func(r *longRecord) { r.Problems = []string{"restart r3: exited"} }},
	} {
		r := passingRun()
		tc.spoil(r)
		rep := judge(r, testLimits)
		if got := failing(rep); rep.Pass || len(got) != 1 || got[0] != tc.check {
			t.Errorf("spoiling %q: failing checks %q, pass %v", tc.check, got, rep.Pass)
		}
	}
}

func TestJudgeLinesFailuresUpWithReroutes(t *testing.T) {
	r := passingRun()
	kill := r.Kills[0].At
	for i := range r.HTTP {
		// Requests from the kill to 1 s after the reroute fail (the reroute ends at kill + 2.9 s).
		if !r.HTTP[i].At.Before(kill) && r.HTTP[i].At.Before(kill.Add(4*time.Second)) {
			r.HTTP[i].Err, r.HTTP[i].Took = "timeout", 5*time.Second
		}
	}
	r.HTTP[50].Err = "connection reset" // at +10 s, far from any kill
	// A reroute no kill explains, with its own failure; it does not fail the run by itself.
	odd := r.Start.Add(8 * time.Minute)
	r.Reroutes = append(r.Reroutes, longReroute{Died: odd, Gap: time.Second, Why: "link dead", SameSession: true})
	r.HTTP[int(8*time.Minute/(200*time.Millisecond))].Err = "timeout"
	rep := judge(r, testLimits)
	if rep.HTTPNear != 21 || len(rep.HTTPAway) != 1 || rep.HTTPAway[0].Err != "connection reset" {
		t.Fatalf("near %d, away %+v", rep.HTTPNear, rep.HTTPAway)
	}
	if rep.Unexpected != 1 || rep.Reroutes[3].Kill != -1 {
		t.Fatalf("the odd reroute: %+v", rep.Reroutes[3])
	}
	if got := failing(rep); len(got) != 1 || got[0] != "traffic between reroutes" {
		t.Fatalf("failing %q", got)
	}
}

func TestMatchReroutes(t *testing.T) {
	t0 := time.Now()
	kills := []longKill{{At: t0}, {At: t0.Add(time.Minute)}}
	rr := func(d time.Duration) longReroute { return longReroute{Died: t0.Add(d)} }
	got := matchReroutes(kills, []longReroute{rr(-time.Second), rr(2 * time.Second), rr(3 * time.Second), rr(62 * time.Second), rr(3 * time.Minute)})
	want := []int{-1, 0, -1, 1, -1} // before any kill; the kill's; a second one after the same kill; the next kill's; long after
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("matched %v, want %v", got, want)
		}
	}
}

func TestJudgeNamesTheGuardsFlags(t *testing.T) {
	r := passingRun()
	at := r.Start.Add(6*time.Minute + 2*time.Second)
	for i := range r.Status {
		if !r.Status[i].At.Before(at) {
			r.Status[i].Guard = "r2"
		}
	}
	r.Flags = []longFlags{
		{At: r.Start, Node: "r1", Flags: "Running|Guard|Stable|Fast"},
		{At: r.Start, Node: "r2", Flags: "Running|Stable|Fast"},
		{At: at.Add(-time.Second), Node: "r1", Flags: "Running|Stable|Fast"},
		{At: at.Add(-time.Second), Node: "r2", Flags: "Running|Guard|Stable|Fast"},
		{At: at.Add(time.Second), Node: "r1", Flags: "Running|Guard|Stable|Fast"},
	}
	rep := judge(r, testLimits)
	if len(rep.GuardChanges) != 1 {
		t.Fatalf("guard changes %+v", rep.GuardChanges)
	}
	g := rep.GuardChanges[0]
	if g.From != "r1" || g.To != "r2" || g.FromFlags != "Running|Stable|Fast" || g.ToFlags != "Running|Guard|Stable|Fast" {
		t.Fatalf("guard change %+v", g)
	}
	if flagsAt(r.Flags, "r3", at) != "?" {
		t.Fatal("flags of a relay never read")
	}
}
