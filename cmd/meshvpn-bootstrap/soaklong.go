package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
	"github.com/meshvpn/meshvpn/network/tun"
)

const soakLongUsage = `Usage: meshvpn-bootstrap soak-long [flags]

Runs one testnet in namespaces for --duration with traffic through the tunnel all the time, and
kills (SIGKILL) the circuit's middle relay every --kill-every, restarting it --restart-after later.
The traffic, all from the client's namespace: --streams long downloads of the web server's /stream,
each open for the whole run and checked byte by byte, that must survive every reroute; a GET / on a
new connection every 200 ms (5 s timeout); an iperf3 run every --iperf-every. Every second it reads
the client's status (state, guard, directory age) and every relay's consensus flags (what explains a
guard change), every 10 s each daemon's memory (VmRSS).

It prints a line per kill and per reroute, one a minute, and a report with a verdict: every kill
rerouted, every reroute's gap under --max-gap on the same exit session, no connection lost, no
request failed away from a reroute, the directory never older than the client's directory_refresh
plus --dir-margin, the guard unchanged, and each daemon's memory flat after --warmup. Exits non-zero
on FAIL. The logs, configs and a JSON record of every sample are copied to --keep when it is given,
and to soak-failures/long-<timestamp> after a failure. Needs root.

Flags:
`

type longOptions struct {
	duration, killEvery, restartAfter time.Duration
	warmup, dirMargin, maxGap, near   time.Duration
	iperfEvery                        time.Duration
	iperfSeconds                      int
	streams                           int
	streamRate                        int64
	memGrowth                         float64
	memSlackMB                        int
	disturb, nat, keep, backend       string
}

func soakLongFlags(fs *flag.FlagSet, o *longOptions) *flag.FlagSet {
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "how long the traffic runs (at most 2h)")
	fs.DurationVar(&o.killEvery, "kill-every", 3*time.Minute, "kill the circuit's middle this often (0: never)")
	fs.DurationVar(&o.restartAfter, "restart-after", 20*time.Second, "restart a killed middle this long after the kill")
	fs.StringVar(&o.disturb, "disturb", "", "load beside the network, as soak's --disturb (ns, cpu, mem, comma-separated); none by default")
	fs.StringVar(&o.nat, "nat", "cl=home,x1=home", "nodes behind emulated NATs of their own: name=home|symmetric, comma-separated (cl is the client); \"\" for none")
	fs.StringVar(&o.keep, "keep", "", "copy the run's logs, configs and record here at the end (without it: only after a failure, to soak-failures/long-<timestamp>)")
	fs.StringVar(&o.backend, "tun", string(tun.BackendWireGuard), "TUN backend: wireguard or water")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Minute, "memory is compared from this long after a process started")
	fs.DurationVar(&o.dirMargin, "dir-margin", 10*time.Second, "the directory may be this much older than the client's directory_refresh")
	fs.DurationVar(&o.maxGap, "max-gap", 5*time.Second, "every reroute's time without a circuit must be under this")
	fs.DurationVar(&o.near, "near", 10*time.Second, "an HTTP failure this close to a kill or reroute is the reroute's")
	fs.DurationVar(&o.iperfEvery, "iperf-every", time.Minute, "an iperf3 run this often, half a period off the kills (0: none)")
	fs.IntVar(&o.iperfSeconds, "iperf-seconds", 5, "length of each iperf3 run")
	fs.IntVar(&o.streams, "streams", 2, "long-lived downloads open for the whole run")
	fs.Int64Var(&o.streamRate, "stream-rate", 200_000, "each stream's rate, in bytes per second")
	fs.Float64Var(&o.memGrowth, "mem-growth", 0.5, "memory is flat if it grew by at most this fraction of its first figure after the warm-up …")
	fs.IntVar(&o.memSlackMB, "mem-slack", 16, "… or by at most this many MB, whichever is more")
	return fs
}

func runSoakLong(args []string) int {
	var o longOptions
	fs := soakLongFlags(flag.NewFlagSet("soak-long", flag.ContinueOnError), &o)
	if code, ok := parseFlags(fs, args, soakLongUsage, os.Stdout, os.Stderr); !ok {
		return code
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if o.duration < time.Minute || o.duration > testnet.StreamMaxSeconds*time.Second {
		bad = append(bad, "--duration: from 1m to 2h")
	}
	if o.killEvery < 0 || o.restartAfter <= 0 || o.iperfEvery < 0 || o.iperfSeconds < 1 || o.streams < 0 ||
		o.streamRate < 1 || o.streamRate > testnet.StreamMaxRate || o.memGrowth < 0 || o.memSlackMB < 0 {
		bad = append(bad, "--kill-every, --iperf-every, --streams, --mem-growth and --mem-slack must not be negative; --restart-after, --iperf-seconds and --stream-rate must be positive")
	}
	nat, err := parseNAT(o.nat)
	if err != nil {
		bad = append(bad, "--nat: "+err.Error())
	}
	d, err := parseDisturb(o.disturb)
	if err != nil {
		bad = append(bad, "--disturb: "+err.Error())
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(os.Stderr, "soak-long:", b)
		}
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "soak-long: needs root (network namespaces, TUN devices, nftables)")
		return 1
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	stopDisturb, err := testnet.StartDisturbance(ctx, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak-long:", err)
		return 1
	}
	defer func() {
		if stopDisturb != nil {
			stopDisturb()
		}
	}()

	t0 := time.Now()
	n, err := testnet.Start(ctx, testnet.Options{Backend: tun.Backend(o.backend), NAT: nat})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak-long: the network did not start:", err)
		return 1
	}
	r := &longRun{n: n, o: o}
	r.rec.Duration, r.rec.KillEvery = o.duration, o.killEvery
	if r.rec.DirRefresh, err = n.DirectoryRefresh(); err != nil {
		fmt.Fprintln(os.Stderr, "soak-long:", err)
		n.Close()
		return 1
	}
	var names []string
	for _, p := range n.Processes() {
		names = append(names, p.Name)
	}
	fmt.Printf("soak-long: network up in %v (%s); daemons: %s\n", time.Since(t0).Round(100*time.Millisecond), circuitOf(ctx, n), strings.Join(names, " "))
	fmt.Printf("soak-long: %v of traffic (%d streams of %d kB/s, GET / every 200 ms, iperf3 %ds every %v), the middle killed every %v and restarted %v later; load: %s\n",
		o.duration, o.streams, o.streamRate/1000, o.iperfSeconds, o.iperfEvery, o.killEvery, o.restartAfter, describeDisturb(d))

	r.run(ctx)

	limits := longLimits{
		MaxGap: o.maxGap, DirAge: r.rec.DirRefresh + o.dirMargin, Warmup: o.warmup,
		MemGrowth: o.memGrowth, MemSlack: int64(o.memSlackMB) << 20, Near: o.near,
	}
	rep := judge(&r.rec, limits)
	printLongReport(os.Stdout, &r.rec, limits, rep)
	if stopDisturb != nil {
		fmt.Printf("load: %s\n", stopDisturb())
		stopDisturb = nil
	}

	keep := o.keep
	if keep == "" && !rep.Pass {
		keep = filepath.Join("soak-failures", "long-"+t0.Format("20060102-150405"))
	}
	var dir string
	if keep != "" {
		dir = n.KeepFiles()
	}
	n.Close()
	if left := n.Leftovers(); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "soak-long: namespaces left behind:", left)
	}
	if dir != "" {
		if err := copyLogs(dir, keep); err != nil {
			fmt.Printf("copying the logs: %v (the whole folder stays in %s)\n", err, dir)
		} else {
			os.RemoveAll(dir)
		}
		if err := writeLongRecord(filepath.Join(keep, "soak-long.json"), &r.rec, rep); err != nil {
			fmt.Println("writing the record:", err)
		}
		fmt.Printf("logs, configs and the record (soak-long.json): %s\n", keep)
	}
	if !rep.Pass {
		return 1
	}
	return 0
}

func writeLongRecord(path string, r *longRecord, rep longReport) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Record  *longRecord `json:"record"`
		Verdict []longCheck `json:"verdict"`
		Pass    bool        `json:"pass"`
	}{r, rep.Checks, rep.Pass}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func circuitOf(ctx context.Context, n *testnet.Net) string {
	path, err := n.Path(ctx)
	if err != nil {
		return err.Error()
	}
	return "circuit " + strings.Join(nodeNames(path), " → ")
}

func nodeNames(path []*testnet.Node) []string {
	names := make([]string, len(path))
	for i, p := range path {
		names[i] = p.Name
	}
	return names
}

// longRun is one long soak in progress.
type longRun struct {
	n *testnet.Net
	o longOptions
	// procMu keeps Kill and Restart, which replace a node's process, apart from Processes.
	procMu sync.Mutex

	mu       sync.Mutex // guards what follows
	rec      longRecord
	lastDied time.Time                  // the newest reroute recorded
	live     map[string]*testnet.Stream // the streams, by ID, the newest of each
	outMu    sync.Mutex                 // one line at a time on stdout
}

func (r *longRun) say(t time.Time, format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Printf("%s %-9s ", t.Format("15:04:05"), since(r.rec.Start, t))
	fmt.Printf(format+"\n", args...)
}

func (r *longRun) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.rec.Problems = append(r.rec.Problems, p)
	r.mu.Unlock()
	r.say(time.Now(), "PROBLEM %s", p)
}

// run runs the traffic, the kills and the sampling until the duration is over and the streams have
// ended, or ctx ends.
func (r *longRun) run(ctx context.Context) {
	o := r.o
	if st, err := r.n.Status(ctx); err == nil {
		for _, rr := range st.Reroutes { // reroutes before the soak are not its
			if rr.Died.After(r.lastDied) {
				r.lastDied = rr.Died
			}
		}
	}
	r.live = map[string]*testnet.Stream{}
	r.rec.Start = time.Now()
	end := r.rec.Start.Add(o.duration)
	if o.killEvery > 0 {
		for i := 1; !r.rec.Start.Add(time.Duration(i)*o.killEvery + o.restartAfter + 15*time.Second).After(end); i++ {
			r.rec.Planned = i
		}
	}
	tctx, stopTraffic := context.WithDeadline(ctx, end)
	defer stopTraffic()
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling, traffic, streams sync.WaitGroup
	sampling.Go(func() { r.sampleStatus(sctx) })
	sampling.Go(func() { r.sampleMemory(sctx) })
	sampling.Go(func() { r.minutes(sctx) })
	sampling.Go(func() { r.sampleFlags(sctx) })
	for i := range o.streams {
		streams.Go(func() { r.stream(ctx, tctx, fmt.Sprintf("s%d", i+1), end) })
	}
	traffic.Go(func() { r.httpLoop(tctx) })
	if o.iperfEvery > 0 {
		traffic.Go(func() { r.iperfLoop(tctx, end) })
	}
	r.killLoop(ctx, tctx)
	<-tctx.Done()
	traffic.Wait()
	streams.Wait() // each ends by itself a moment after end: curl's --max-time bounds it
	r.mu.Lock()
	r.rec.End = time.Now()
	r.mu.Unlock()
	stopSampling()
	sampling.Wait()
	r.rec.Interrupted = ctx.Err() != nil
}

// killLoop kills the middle every --kill-every and restarts it --restart-after later, as planned.
func (r *longRun) killLoop(ctx, tctx context.Context) {
	for i := 1; i <= r.rec.Planned; i++ {
		at := r.rec.Start.Add(time.Duration(i) * r.o.killEvery)
		select {
		case <-tctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		r.killOnce(ctx, i)
	}
}

func (r *longRun) killOnce(ctx context.Context, i int) {
	n := r.n
	st, err := n.Status(ctx)
	if err != nil {
		r.problem("kill %d: the client's status: %v", i, err)
		return
	}
	path, err := n.Path(ctx)
	if err != nil || len(path) != 3 {
		r.problem("kill %d: the circuit: %d hops, %v", i, len(path), err)
		return
	}
	middle := path[1]
	k := longKill{At: time.Now(), Node: middle.Name, Path: nodeNames(path), State: st.State}
	r.mu.Lock()
	r.rec.Kills = append(r.rec.Kills, k)
	idx := len(r.rec.Kills) - 1
	r.mu.Unlock()
	r.procMu.Lock()
	err = n.Kill(middle)
	r.procMu.Unlock()
	if err != nil {
		r.problem("kill %d: %s: %v", i, middle.Name, err)
		return
	}
	r.say(k.At, "kill %d: %s, the middle of %s (client %s)", i, middle.Name, strings.Join(k.Path, " → "), st.State)
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(k.At.Add(r.o.restartAfter))):
	}
	r.procMu.Lock()
	err = n.Restart(middle)
	r.procMu.Unlock()
	now := time.Now()
	r.mu.Lock()
	r.rec.Kills[idx].Restarted = now
	if err != nil {
		r.rec.Kills[idx].RestartErr = err.Error()
	}
	r.mu.Unlock()
	if err != nil {
		r.problem("restart %s: %v", middle.Name, err)
		return
	}
	r.say(now, "restarted %s", middle.Name)
}

// stream keeps one long download open until end: a stream that dies is recorded, and another takes
// its place for the time left (if there is more than 30 s).
func (r *longRun) stream(ctx, tctx context.Context, id string, end time.Time) {
	for gen := 1; ; gen++ {
		secs := int64(time.Until(end).Seconds() + 0.5)
		if secs < 1 {
			return
		}
		name := id
		if gen > 1 {
			name = fmt.Sprintf("%s.%d", id, gen)
		}
		s := r.n.StartStream(ctx, r.o.streamRate, secs, time.Duration(secs)*time.Second+2*time.Minute)
		r.mu.Lock()
		r.live[id] = s
		r.mu.Unlock()
		<-s.Done()
		st := s.State()
		if ctx.Err() != nil {
			return // interrupted: the stream counts for nothing
		}
		r.mu.Lock()
		r.rec.Streams = append(r.rec.Streams, longStream{ID: name, StreamState: st})
		r.mu.Unlock()
		if st.Success {
			return
		}
		r.say(st.Ended, "stream %s LOST after %s of %s MB, last byte at %s: %s", name, mb(st.Bytes), mb(st.Want), since(r.rec.Start, st.LastByte), st.Err)
		if tctx.Err() != nil || time.Until(end) < 30*time.Second {
			return
		}
	}
}

// httpLoop GETs / on a new connection every 200 ms, 5 s at most each.
func (r *longRun) httpLoop(tctx context.Context) {
	hc := r.n.ClientHTTP(5 * time.Second)
	defer hc.CloseIdleConnections()
	for tctx.Err() == nil {
		t := time.Now()
		err := get(tctx, hc, "http://"+testnet.WebAddr+"/")
		if tctx.Err() != nil {
			return // cut off by the end: counts for nothing
		}
		p := longProbe{At: t, Took: time.Since(t)}
		if err != nil {
			p.Err = err.Error()
		}
		r.mu.Lock()
		r.rec.HTTP = append(r.rec.HTTP, p)
		r.mu.Unlock()
		select {
		case <-tctx.Done():
		case <-time.After(time.Until(t.Add(200 * time.Millisecond))):
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// iperfLoop runs iperf3 every --iperf-every, half a period after the kills' times, while a whole
// run fits before end.
func (r *longRun) iperfLoop(tctx context.Context, end time.Time) {
	for i := 0; ; i++ {
		at := r.rec.Start.Add(r.o.iperfEvery/2 + time.Duration(i)*r.o.iperfEvery)
		if at.Add(time.Duration(r.o.iperfSeconds+5) * time.Second).After(end) {
			return
		}
		select {
		case <-tctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		t := time.Now()
		bps, err := r.n.IperfOnce(tctx, r.o.iperfSeconds)
		if tctx.Err() != nil {
			return
		}
		ip := longIperf{At: t, Bps: bps}
		if err != nil {
			ip.Err = err.Error()
			r.say(t, "iperf3 FAILED: %v", err)
		}
		r.mu.Lock()
		r.rec.Iperf = append(r.rec.Iperf, ip)
		r.mu.Unlock()
	}
}

// sampleStatus reads the client's status every second: state, guard, directory, and new reroutes
// (each printed as it is seen). A last reading is made when ctx ends.
func (r *longRun) sampleStatus(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.statusOnce()
		select {
		case <-ctx.Done():
			r.statusOnce()
			return
		case <-tick.C:
		}
	}
}

func (r *longRun) statusOnce() {
	n := r.n
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := n.Status(cctx)
	s := longStatus{At: time.Now()}
	if err != nil {
		s.Err = err.Error()
		r.mu.Lock()
		r.rec.Status = append(r.rec.Status, s)
		r.mu.Unlock()
		return
	}
	s.State = st.State
	if len(st.Circuit.Hops) > 0 {
		s.Guard = n.NameOf(st.Circuit.Hops[0].Identity)
	}
	if st.Directory != nil {
		s.Fetched = st.Directory.Fetched
	}
	var fresh []longReroute
	r.mu.Lock()
	r.rec.Status = append(r.rec.Status, s)
	for _, rr := range st.Reroutes {
		if !rr.Died.After(r.lastDied) {
			continue
		}
		r.lastDied = rr.Died
		path := make([]string, len(rr.Path))
		for i, p := range rr.Path {
			path[i] = n.NameOf(p)
		}
		lr := longReroute{Died: rr.Died, Gap: time.Duration(rr.GapMillis * float64(time.Millisecond)), Why: rr.Why, Path: path, SameSession: rr.SameSession}
		r.rec.Reroutes = append(r.rec.Reroutes, lr)
		fresh = append(fresh, lr)
	}
	match := matchReroutes(r.rec.Kills, r.rec.Reroutes)
	kills := slices.Clone(r.rec.Kills)
	r.mu.Unlock()
	for i, lr := range fresh {
		k := match[len(match)-len(fresh)+i]
		what := "reroute without a kill"
		if k >= 0 {
			what = fmt.Sprintf("reroute after kill %d of %s, noticed +%v", k+1, kills[k].Node, lr.Died.Sub(kills[k].At).Round(time.Millisecond))
		}
		r.say(lr.Died, "%s: gap %.0f ms, same session %v, now %s (%s)", what, float64(lr.Gap)/float64(time.Millisecond), lr.SameSession, strings.Join(lr.Path, " → "), lr.Why)
	}
}

// sampleMemory reads every daemon's RSS every 10 s, and once more when ctx ends.
func (r *longRun) sampleMemory(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		r.memoryOnce()
		select {
		case <-ctx.Done():
			r.memoryOnce()
			return
		case <-tick.C:
		}
	}
}

func (r *longRun) memoryOnce() {
	r.procMu.Lock()
	ps := r.n.Processes()
	r.procMu.Unlock()
	now := time.Now()
	var ms []longMem
	for _, p := range ps {
		rss, err := testnet.RSS(p.PID)
		if err != nil {
			continue // it ended since
		}
		ms = append(ms, longMem{At: now, Name: p.Name, PID: p.PID, RSS: rss})
	}
	r.mu.Lock()
	r.rec.Memory = append(r.rec.Memory, ms...)
	r.mu.Unlock()
}

// sampleFlags reads every relay's consensus flags every second and records their changes.
func (r *longRun) sampleFlags(ctx context.Context) {
	last := map[string]string{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		flags, err := r.n.Flags(cctx)
		cancel()
		if err == nil {
			now := time.Now()
			for name := range last {
				if _, ok := flags[name]; !ok && last[name] != "unlisted" {
					flags[name] = "unlisted"
				}
			}
			var changed []longFlags
			for name, f := range flags {
				if last[name] != f {
					last[name] = f
					changed = append(changed, longFlags{At: now, Node: name, Flags: f})
				}
			}
			slices.SortFunc(changed, func(a, b longFlags) int { return strings.Compare(a.Node, b.Node) })
			r.mu.Lock()
			r.rec.Flags = append(r.rec.Flags, changed...)
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// minutes prints a line a minute: the streams, the requests and the directory's age in that minute,
// the client's state and memory.
func (r *longRun) minutes(ctx context.Context) {
	for m := 1; ; m++ {
		at := r.rec.Start.Add(time.Duration(m) * time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		r.minuteLine(at.Add(-time.Minute), at)
	}
}

func (r *longRun) minuteLine(from, to time.Time) {
	r.mu.Lock()
	ok, failed := 0, 0
	for _, p := range slices.Backward(r.rec.HTTP) {
		if p.At.Before(from) {
			break
		}
		if p.Err == "" {
			ok++
		} else {
			failed++
		}
	}
	var dirMax time.Duration
	var state, guard string
	noDir := 0
	for _, s := range slices.Backward(r.rec.Status) {
		if s.At.Before(from) {
			break
		}
		if state == "" && s.Err == "" {
			state, guard = s.State, s.Guard
		}
		if s.Err == "" && s.Fetched.IsZero() {
			noDir++
		} else if s.Err == "" {
			dirMax = max(dirMax, s.At.Sub(s.Fetched))
		}
	}
	var iperf string
	for _, ip := range slices.Backward(r.rec.Iperf) {
		if ip.At.Before(from) {
			break
		}
		if ip.Err != "" {
			iperf = ", iperf3 failed"
		} else {
			iperf = fmt.Sprintf(", iperf3 %.0f Mbit/s", ip.Bps/1e6)
		}
	}
	var clientRSS, maxRSS int64
	var maxName string
	for _, m := range slices.Backward(r.rec.Memory) {
		if m.At.Before(to.Add(-15 * time.Second)) {
			break
		}
		if m.Name == "client" {
			clientRSS = m.RSS
		} else if m.RSS > maxRSS {
			maxRSS, maxName = m.RSS, m.Name
		}
	}
	var streams []string
	ids := make([]string, 0, len(r.live))
	for id := range r.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	lost := 0
	for _, s := range r.rec.Streams {
		if !s.Success {
			lost++
		}
	}
	for _, id := range ids {
		st := r.live[id].State()
		streams = append(streams, fmt.Sprintf("%s %s MB", id, mb(st.Bytes)))
	}
	r.mu.Unlock()
	dir := fmt.Sprintf("max %v", dirMax.Round(100*time.Millisecond))
	if noDir > 0 {
		dir += fmt.Sprintf(" (%d readings without one)", noDir)
	}
	r.say(to, "minute: streams %s (%d lost so far); GET / %d ok, %d failed%s; directory age %s; client %s, guard %s; RSS client %s MB, largest other %s %s MB",
		strings.Join(streams, ", "), lost, ok, failed, iperf, dir, state, guard, mb(clientRSS), maxName, mb(maxRSS))
}
