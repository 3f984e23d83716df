package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
)

// What soak-long records while it runs, and the report and verdict made from it afterwards. judge is
// a pure function of the record, so that the verdict can be tested on made-up runs.

// longRecord is everything one long soak saw. Times are wall-clock times of this machine (the client's
// status uses the same clock).
type longRecord struct {
	Start       time.Time     `json:"start"` // traffic began
	End         time.Time     `json:"end"`   // the last stream ended
	Duration    time.Duration `json:"duration"`
	KillEvery   time.Duration `json:"kill_every"`
	Interrupted bool          `json:"interrupted"`
	// DirRefresh is the client's directory_refresh.
	DirRefresh time.Duration `json:"directory_refresh"`
	// Planned is how many kills the run should have made.
	Planned  int           `json:"planned_kills"`
	Kills    []longKill    `json:"kills"`
	Reroutes []longReroute `json:"reroutes"`
	Streams  []longStream  `json:"streams"`
	HTTP     []longProbe   `json:"http"`
	Iperf    []longIperf   `json:"iperf"`
	Status   []longStatus  `json:"status"`
	Memory   []longMem     `json:"memory"`
	// Flags are the consensus flags of every relay, read every few seconds, as their changes: the
	// first reading of each relay and every change since ("unlisted" when it left the consensus).
	Flags []longFlags `json:"flags"`
	// Problems are things that went wrong with the test itself: a relay that did not restart, a path
	// that could not be read.
	Problems []string `json:"problems"`
}

type longKill struct {
	At         time.Time `json:"at"`
	Node       string    `json:"node"`
	Path       []string  `json:"path"`  // the circuit before the kill, guard first
	State      string    `json:"state"` // the client's, just before
	Restarted  time.Time `json:"restarted,omitzero"`
	RestartErr string    `json:"restart_error,omitempty"`
}

// longReroute is one entry of the client status's reroutes.
type longReroute struct {
	Died        time.Time     `json:"died"`
	Gap         time.Duration `json:"gap"`
	Why         string        `json:"why"`
	Path        []string      `json:"path"`
	SameSession bool          `json:"same_session"`
}

type longStream struct {
	ID string `json:"id"`
	testnet.StreamState
}

// longProbe is one HTTP GET / on a new connection.
type longProbe struct {
	At   time.Time     `json:"at"`
	Took time.Duration `json:"took"`
	Err  string        `json:"err,omitempty"`
}

type longIperf struct {
	At  time.Time `json:"at"`
	Bps float64   `json:"bps"`
	Err string    `json:"err,omitempty"`
}

// longStatus is one reading of the client's status.
type longStatus struct {
	At      time.Time `json:"at"`
	State   string    `json:"state,omitempty"`
	Guard   string    `json:"guard,omitempty"`  // by testnet name
	Fetched time.Time `json:"fetched,omitzero"` // the directory's; zero: the client had none
	Err     string    `json:"err,omitempty"`
}

// longMem is one process's resident memory at one time.
type longMem struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
	PID  int       `json:"pid"`
	RSS  int64     `json:"rss"`
}

// longFlags is a relay's flags in the consensus from a time on.
type longFlags struct {
	At    time.Time `json:"at"`
	Node  string    `json:"node"`
	Flags string    `json:"flags"`
}

// flagsAt returns a relay's flags in the consensus at t, as last read before it ("?" if never).
func flagsAt(fs []longFlags, node string, t time.Time) string {
	out := "?"
	for _, f := range fs {
		if f.At.After(t) {
			break
		}
		if f.Node == node {
			out = f.Flags
		}
	}
	return out
}

// longLimits are the done-criteria's figures.
type longLimits struct {
	MaxGap time.Duration // every reroute's time without a circuit is below
	DirAge time.Duration // the directory is never older than
	Warmup time.Duration // memory is compared from this long after a process started
	// A process's memory is flat if it grew by at most MemGrowth of its first figure after the
	// warm-up, or by MemSlack bytes, whichever is more.
	MemGrowth float64
	MemSlack  int64
	// Near is how close to a kill or reroute an HTTP failure counts as the reroute's.
	Near time.Duration
}

type longCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// matchedReroute is a reroute with the kill that caused it (Kill -1: none).
type matchedReroute struct {
	longReroute
	Kill      int
	Detection time.Duration // from the kill to the client's learning of it
}

type guardChange struct {
	At       time.Time
	From, To string
	// FromFlags and ToFlags are the two relays' consensus flags at the change.
	FromFlags, ToFlags string
}

// memLine is one process incarnation's memory (a restarted relay has one per start).
type memLine struct {
	Name             string
	PID              int
	Since            time.Time // first sample
	First, Last, Max int64     // First: the first sample after the warm-up (0: none)
	FirstAt, LastAt  time.Time
	Judged, Grew     bool
}

type longReport struct {
	Reroutes      []matchedReroute
	UnmatchedKill []int // kills the client never rerouted after
	Unexpected    int   // reroutes no kill explains
	MaxGap        time.Duration
	Detection     []time.Duration

	Lost              []longStream // streams that died
	StreamBytes       int64        // received by every stream together
	LongestStall      time.Duration
	LongestStallOf    string
	LongestStallFrom  time.Time
	HTTPOK, HTTPFail  int
	HTTPNear          int         // failures within Near of a kill or reroute
	HTTPAway          []longProbe // failures elsewhere
	IperfOK           []float64
	IperfFail         []longIperf
	DirSamples        int
	DirMissing        int // status readings without a directory
	DirMax, DirP99    time.Duration
	DirMaxAt          time.Time
	StatusErrors      int
	NotConnected      int // status readings with the client not connected
	Guards            []string
	GuardChanges      []guardChange
	Memory            []memLine
	Checks            []longCheck
	Pass              bool
	StatusSamples     int
	FirstGuard        string
	UnexpectedDetails []matchedReroute
}

// matchReroutes finds each reroute's kill: the latest kill at most a minute before the reroute
// began that no earlier reroute claimed (-1: none).
func matchReroutes(kills []longKill, reroutes []longReroute) []int {
	claimed := make([]bool, len(kills))
	out := make([]int, len(reroutes))
	for i, rr := range reroutes {
		out[i] = -1
		for k := len(kills) - 1; k >= 0; k-- {
			d := rr.Died.Sub(kills[k].At)
			if d < 0 {
				continue
			}
			if d <= time.Minute && !claimed[k] {
				claimed[k], out[i] = true, k
			}
			break
		}
	}
	return out
}

// judge makes the report and the verdict.
func judge(r *longRecord, l longLimits) longReport {
	var rep longReport

	// Reroutes, each with its kill.
	match := matchReroutes(r.Kills, r.Reroutes)
	rerouted := make([]bool, len(r.Kills))
	for i, rr := range r.Reroutes {
		m := matchedReroute{longReroute: rr, Kill: match[i]}
		if m.Kill >= 0 {
			rerouted[m.Kill] = true
			m.Detection = rr.Died.Sub(r.Kills[m.Kill].At)
			rep.Detection = append(rep.Detection, m.Detection)
		} else {
			rep.Unexpected++
			rep.UnexpectedDetails = append(rep.UnexpectedDetails, m)
		}
		rep.Reroutes = append(rep.Reroutes, m)
		rep.MaxGap = max(rep.MaxGap, rr.Gap)
	}
	for k, ok := range rerouted {
		if !ok {
			rep.UnmatchedKill = append(rep.UnmatchedKill, k)
		}
	}

	// Streams.
	for _, s := range r.Streams {
		rep.StreamBytes += s.Bytes
		if s.LongestStall > rep.LongestStall {
			rep.LongestStall, rep.LongestStallOf, rep.LongestStallFrom = s.LongestStall, s.ID, s.StallFrom
		}
		if !s.Success {
			rep.Lost = append(rep.Lost, s)
		}
	}

	// HTTP, with the times around kills and reroutes.
	type window struct{ from, to time.Time }
	var windows []window
	for k, kill := range r.Kills {
		end := kill.At.Add(30 * time.Second)
		for _, m := range rep.Reroutes {
			if m.Kill == k {
				end = m.Died.Add(m.Gap)
			}
		}
		windows = append(windows, window{kill.At.Add(-l.Near), end.Add(l.Near)})
	}
	for _, rr := range r.Reroutes {
		windows = append(windows, window{rr.Died.Add(-l.Near), rr.Died.Add(rr.Gap + l.Near)})
	}
	for _, p := range r.HTTP {
		if p.Err == "" {
			rep.HTTPOK++
			continue
		}
		rep.HTTPFail++
		near := false
		for _, w := range windows {
			if !p.At.After(w.to) && !p.At.Add(p.Took).Before(w.from) {
				near = true
				break
			}
		}
		if near {
			rep.HTTPNear++
		} else {
			rep.HTTPAway = append(rep.HTTPAway, p)
		}
	}
	for _, ip := range r.Iperf {
		if ip.Err == "" {
			rep.IperfOK = append(rep.IperfOK, ip.Bps)
		} else {
			rep.IperfFail = append(rep.IperfFail, ip)
		}
	}

	// The client's status: directory age, state, guard.
	var ages []time.Duration
	rep.StatusSamples = len(r.Status)
	for _, s := range r.Status {
		if s.Err != "" {
			rep.StatusErrors++
			continue
		}
		if s.State != "connected" {
			rep.NotConnected++
		}
		if s.Fetched.IsZero() {
			rep.DirMissing++
		} else {
			age := s.At.Sub(s.Fetched)
			ages = append(ages, age)
			if age > rep.DirMax {
				rep.DirMax, rep.DirMaxAt = age, s.At
			}
		}
		if s.Guard == "" {
			continue
		}
		if len(rep.Guards) == 0 {
			rep.FirstGuard = s.Guard
		}
		if n := len(rep.Guards); n > 0 && rep.Guards[n-1] != s.Guard {
			// The flags are looked up when the client chose: at the reroute just before, if any.
			from, chose := rep.Guards[n-1], s.At
			for _, rr := range r.Reroutes {
				if !rr.Died.After(s.At) && rr.Died.After(s.At.Add(-5*time.Second)) {
					chose = rr.Died
				}
			}
			rep.GuardChanges = append(rep.GuardChanges, guardChange{s.At, from, s.Guard, flagsAt(r.Flags, from, chose), flagsAt(r.Flags, s.Guard, chose)})
		}
		if n := len(rep.Guards); n == 0 || rep.Guards[n-1] != s.Guard {
			rep.Guards = append(rep.Guards, s.Guard)
		}
	}
	rep.DirSamples = len(ages)
	if len(ages) > 0 {
		slices.Sort(ages)
		rep.DirP99 = ages[max(int(math.Ceil(0.99*float64(len(ages))))-1, 0)]
	}

	// Memory, per process incarnation.
	type incarnation struct {
		name string
		pid  int
	}
	index := map[incarnation]int{}
	for _, m := range r.Memory {
		key := incarnation{m.Name, m.PID}
		i, ok := index[key]
		if !ok {
			i = len(rep.Memory)
			index[key] = i
			rep.Memory = append(rep.Memory, memLine{Name: m.Name, PID: m.PID, Since: m.At})
		}
		ml := &rep.Memory[i]
		ml.Max = max(ml.Max, m.RSS)
		if m.At.Before(ml.Since.Add(l.Warmup)) {
			continue
		}
		if ml.FirstAt.IsZero() {
			ml.First, ml.FirstAt = m.RSS, m.At
		}
		ml.Last, ml.LastAt = m.RSS, m.At
	}
	// A restarted process's lines follow its first one.
	firstOf := map[string]int{}
	for i, m := range rep.Memory {
		if _, ok := firstOf[m.Name]; !ok {
			firstOf[m.Name] = i
		}
	}
	slices.SortStableFunc(rep.Memory, func(a, b memLine) int { return firstOf[a.Name] - firstOf[b.Name] })
	judged, grew := 0, 0
	for i := range rep.Memory {
		ml := &rep.Memory[i]
		if ml.FirstAt.IsZero() || !ml.LastAt.After(ml.FirstAt) {
			continue
		}
		ml.Judged = true
		judged++
		allowed := max(int64(float64(ml.First)*l.MemGrowth), l.MemSlack)
		if ml.Last-ml.First > allowed {
			ml.Grew = true
			grew++
		}
	}

	// The verdict.
	check := func(name string, ok bool, format string, args ...any) {
		rep.Checks = append(rep.Checks, longCheck{name, ok, fmt.Sprintf(format, args...)})
	}
	check("ran its whole time", !r.Interrupted, "%v of traffic%s", r.End.Sub(r.Start).Round(time.Second), map[bool]string{true: ", interrupted"}[r.Interrupted])
	check("every kill rerouted", len(r.Kills) == r.Planned && len(rep.UnmatchedKill) == 0,
		"%d kills of %d planned, %d without a reroute", len(r.Kills), r.Planned, len(rep.UnmatchedKill))
	over := 0
	for _, m := range rep.Reroutes {
		if m.Gap >= l.MaxGap {
			over++
		}
	}
	check("every reroute gap under "+l.MaxGap.String(), over == 0, "%d reroutes, max gap %v, %d at or over", len(rep.Reroutes), rep.MaxGap.Round(time.Millisecond), over)
	other := 0
	for _, m := range rep.Reroutes {
		if !m.SameSession {
			other++
		}
	}
	check("the exit kept the session", other == 0, "%d of %d reroutes on a new session", other, len(rep.Reroutes))
	check("no connection lost", len(r.Streams) > 0 && len(rep.Lost) == 0, "%d of %d streams lost", len(rep.Lost), len(r.Streams))
	check("traffic between reroutes", rep.HTTPOK > 0 && len(rep.HTTPAway) == 0 && len(rep.IperfFail) == 0,
		"%d HTTP requests ok, %d failed away from a reroute; %d iperf3 runs failed", rep.HTTPOK, len(rep.HTTPAway), len(rep.IperfFail))
	check("directory age at most "+l.DirAge.String(), rep.DirSamples > 0 && rep.DirMissing == 0 && rep.DirMax <= l.DirAge,
		"max %v over %d readings, %d without a directory", rep.DirMax.Round(100*time.Millisecond), rep.DirSamples, rep.DirMissing)
	check("guard unchanged", len(rep.Guards) > 0 && len(rep.GuardChanges) == 0, "%d changes", len(rep.GuardChanges))
	check("memory flat", judged > 0 && grew == 0, "%d of %d processes judged (alive past the %v warm-up), %d grew", judged, len(rep.Memory), l.Warmup, grew)
	check("the test itself", len(r.Problems) == 0, "%d problems", len(r.Problems))
	rep.Pass = true
	for _, c := range rep.Checks {
		rep.Pass = rep.Pass && c.OK
	}
	return rep
}

// since gives a time as an offset from the start of the traffic.
func since(start, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(start).Round(100 * time.Millisecond)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%dm%04.1fs", sign, int(d.Minutes()), (d % time.Minute).Seconds())
}

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func printLongReport(w io.Writer, r *longRecord, l longLimits, rep longReport) {
	at := func(t time.Time) string { return since(r.Start, t) }
	fmt.Fprintf(w, "\n== soak-long: %v of traffic, the middle killed every %v ==\n", r.End.Sub(r.Start).Round(time.Second), r.KillEvery)

	fmt.Fprintf(w, "reroutes: %d (%d after a kill, %d without one), max gap %v, all under %v: %s\n",
		len(rep.Reroutes), len(rep.Reroutes)-rep.Unexpected, rep.Unexpected, rep.MaxGap.Round(time.Millisecond), l.MaxGap,
		map[bool]string{true: "yes", false: "NO"}[rep.MaxGap < l.MaxGap])
	if len(rep.Detection) > 0 {
		fmt.Fprintf(w, "  a kill was noticed after: median %v, max %v\n", median(rep.Detection), slices.Max(rep.Detection).Round(time.Millisecond))
	}
	for _, m := range rep.Reroutes {
		killed := "no kill    "
		if m.Kill >= 0 {
			killed = fmt.Sprintf("killed %-3s ", r.Kills[m.Kill].Node)
		}
		det, outage := "-", "-"
		if m.Kill >= 0 {
			det = "+" + m.Detection.Round(time.Millisecond).String()
			outage = (m.Detection + m.Gap).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "  %s %s noticed %-8s gap %5.0f ms  (kill to new circuit %s)  same session %-5v %s  (%s)\n", at(m.Died), killed, det,
			float64(m.Gap)/float64(time.Millisecond), outage, m.SameSession, strings.Join(m.Path, " → "), m.Why)
	}
	for _, k := range rep.UnmatchedKill {
		fmt.Fprintf(w, "  %s killed %s: the client never rerouted\n", at(r.Kills[k].At), r.Kills[k].Node)
	}

	fmt.Fprintf(w, "lost connections: %d of %d streams (%s MB received in all, every byte checked against the pattern)\n",
		len(rep.Lost), len(r.Streams), mb(rep.StreamBytes))
	streams := slices.Clone(r.Streams)
	slices.SortStableFunc(streams, func(a, b longStream) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range streams {
		state := "complete"
		if !s.Success {
			state = fmt.Sprintf("LOST: last byte at %s, ended %s: %s", at(s.LastByte), at(s.Ended), s.Err)
		}
		fmt.Fprintf(w, "  %-5s %s of %s MB, longest stall %v from %s; %s\n", s.ID, mb(s.Bytes), mb(s.Want),
			s.LongestStall.Round(time.Millisecond), at(s.StallFrom), state)
	}

	fmt.Fprintf(w, "HTTP GET / on a new connection (5 s timeout): %d ok, %d failed (%d within %v of a kill or reroute, %d elsewhere)\n",
		rep.HTTPOK, rep.HTTPFail, rep.HTTPNear, l.Near, len(rep.HTTPAway))
	for i, p := range rep.HTTPAway {
		if i == 10 {
			fmt.Fprintf(w, "  … %d more\n", len(rep.HTTPAway)-10)
			break
		}
		fmt.Fprintf(w, "  %s failed after %v: %s\n", at(p.At), p.Took.Round(time.Millisecond), p.Err)
	}
	if len(r.Iperf) > 0 {
		var rates []string
		for _, b := range rep.IperfOK {
			rates = append(rates, fmt.Sprintf("%.0f", b/1e6))
		}
		fmt.Fprintf(w, "iperf3: %d ok (Mbit/s: %s), %d failed\n", len(rep.IperfOK), strings.Join(rates, " "), len(rep.IperfFail))
		for _, f := range rep.IperfFail {
			fmt.Fprintf(w, "  %s %s\n", at(f.At), f.Err)
		}
	}

	fmt.Fprintf(w, "directory age: max %v (at %s), p99 %v, over %d readings; limit %v (directory_refresh %v + margin %v)\n",
		rep.DirMax.Round(100*time.Millisecond), at(rep.DirMaxAt), rep.DirP99.Round(100*time.Millisecond), rep.DirSamples, l.DirAge, r.DirRefresh, l.DirAge-r.DirRefresh)
	if rep.DirMissing > 0 {
		fmt.Fprintf(w, "  %d readings without a directory\n", rep.DirMissing)
	}
	fmt.Fprintf(w, "client status: %d readings, %d not connected, %d failed\n", rep.StatusSamples, rep.NotConnected, rep.StatusErrors)
	if len(rep.GuardChanges) == 0 {
		fmt.Fprintf(w, "guard: %s throughout (0 changes)\n", rep.FirstGuard)
	} else {
		fmt.Fprintf(w, "guard: %d changes\n", len(rep.GuardChanges))
		for _, g := range rep.GuardChanges {
			fmt.Fprintf(w, "  %s %s → %s  (consensus flags then, as read here every second; the client's copy may be a refresh older: %s %s, %s %s)\n", at(g.At), g.From, g.To, g.From, g.FromFlags, g.To, g.ToFlags)
		}
	}
	if len(r.Flags) > 0 {
		changes := map[string]int{}
		var order []string
		for _, f := range r.Flags {
			if _, ok := changes[f.Node]; !ok {
				order = append(order, f.Node)
				changes[f.Node] = -1 // the first reading is no change
			}
			changes[f.Node]++
		}
		slices.Sort(order)
		var parts []string
		for _, node := range order {
			parts = append(parts, fmt.Sprintf("%s %d", node, changes[node]))
		}
		fmt.Fprintf(w, "consensus flag changes per relay: %s\n", strings.Join(parts, ", "))
	}

	fmt.Fprintf(w, "memory (RSS in MB: first after the %v warm-up, last, max; growth):\n", l.Warmup)
	for _, m := range rep.Memory {
		if !m.Judged {
			fmt.Fprintf(w, "  %-6s pid %-7d first seen %s, max %s, not judged (not sampled twice after its warm-up)\n", m.Name, m.PID, at(m.Since), mb(m.Max))
			continue
		}
		flag := ""
		if m.Grew {
			flag = "  GREW"
		}
		rate := "" // over a short time a rate is noise
		if span := m.LastAt.Sub(m.FirstAt); span >= 10*time.Minute {
			rate = fmt.Sprintf(" (%+.1f MB/h)", float64(m.Last-m.First)/(1<<20)/span.Hours())
		}
		fmt.Fprintf(w, "  %-6s pid %-7d %7s %7s %7s   %+.1f MB in %v%s%s\n", m.Name, m.PID, mb(m.First), mb(m.Last), mb(m.Max),
			float64(m.Last-m.First)/(1<<20), m.LastAt.Sub(m.FirstAt).Round(time.Second), rate, flag)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}

	fmt.Fprintln(w, "verdict:")
	for _, c := range rep.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-38s %s\n", mark, c.Name, c.Detail)
	}
	if rep.Pass {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}
