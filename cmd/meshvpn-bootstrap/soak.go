package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
	"github.com/meshvpn/meshvpn/network/tun"
)

const soakUsage = `Usage: meshvpn-bootstrap soak [flags]

Kills the circuit's middle relay during a download again and again (the demo's step 5), on testnets
in namespaces, while the machine is kept busy: namespaces churned (the kernel's rtnl lock, as make
test does), every core spinning, a quarter of the free memory held and replaced. Each reroute must
keep the TCP connection (the download finishes with the right checksum) and the exit's session.
After a passing reroute the killed relay is restarted (same identity) and the next one runs on the
same network, up to --per-net times; a network that saw a failure is torn down, its logs and configs copied to
--keep/run-NNN, and a fresh one started. Exits non-zero if any reroute failed. Needs root.

Flags:
`

type soakOptions struct {
	runs, perNet int
	disturb      string
	keep         string
	nat          string
	backend      string
	settle       time.Duration
	restart      bool
}

func soakFlags(fs *flag.FlagSet, o *soakOptions) *flag.FlagSet {
	fs.IntVar(&o.runs, "runs", 100, "reroutes to try in all")
	fs.IntVar(&o.perNet, "per-net", 5, "reroutes on one network before it is torn down and a fresh one started")
	fs.StringVar(&o.disturb, "disturb", "ns,cpu,mem", "load beside the networks, comma-separated: ns (namespace churn), cpu (every core spinning), mem (25% of MemAvailable held and replaced); \"\" for none")
	fs.StringVar(&o.keep, "keep", "", "where each failed run's logs and configs are copied, as run-NNN (default ./soak-failures/<timestamp>)")
	fs.StringVar(&o.nat, "nat", "cl=home,x1=home", "nodes behind emulated NATs of their own: name=home|symmetric, comma-separated (cl is the client); \"\" for none")
	fs.StringVar(&o.backend, "tun", string(tun.BackendWireGuard), "TUN backend: wireguard or water")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "pause after a killed relay is restarted, before waiting for the consensus to list it and the client to be connected")
	fs.BoolVar(&o.restart, "restart", true, "restart the killed relay before the next reroute on the same network (false: it stays down, the network shrinks; keep --per-net small)")
	return fs
}

// The reroute the soak repeats: the demo's step 5.
const (
	soakRate      = 2_000_000 // bytes per second from the web server: 10 MB take about 5 s
	soakKillAfter = 1500 * time.Millisecond
	soakLimit     = 60 * time.Second
	// startTries is how many networks in a row may fail to start before the soak gives up.
	startTries = 3
)

func runSoak(args []string) int {
	var o soakOptions
	fs := soakFlags(flag.NewFlagSet("soak", flag.ContinueOnError), &o)
	if code, ok := parseFlags(fs, args, soakUsage, os.Stdout, os.Stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.runs < 1 || o.perNet < 1 {
		fmt.Fprintln(os.Stderr, "soak: --runs and --per-net must be at least 1")
		return 2
	}
	nat, err := parseNAT(o.nat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: --nat:", err)
		return 2
	}
	d, err := parseDisturb(o.disturb)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: --disturb:", err)
		return 2
	}
	if o.keep == "" {
		o.keep = filepath.Join("soak-failures", time.Now().Format("20060102-150405"))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "soak: needs root (network namespaces, TUN devices, nftables)")
		return 1
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	began := time.Now()
	stopDisturb, err := testnet.StartDisturbance(ctx, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	disturbStopped := false
	defer func() {
		if !disturbStopped {
			stopDisturb()
		}
	}()
	fmt.Printf("soak: %d reroutes, %d per network; load: %s; failed runs' logs go to %s\n",
		o.runs, o.perNet, describeDisturb(d), o.keep)

	s := &soak{o: o, opts: testnet.Options{Backend: tun.Backend(o.backend), NAT: nat}}
	s.loop(ctx)

	interrupted := ctx.Err() != nil
	stats := stopDisturb()
	disturbStopped = true
	fmt.Println()
	if interrupted {
		fmt.Println("soak: interrupted")
	}
	fmt.Printf("reroutes passed: %d of %d (%d networks started, %d network problems) in %v\n",
		s.passed, s.tried, s.networks, len(s.problems), time.Since(began).Round(time.Second))
	if len(s.gaps) > 0 {
		fmt.Printf("  without a circuit: median %v, max %v; longest stall of a download: median %v, max %v\n",
			median(s.gaps), slices.Max(s.gaps).Round(time.Millisecond), median(s.stalls), slices.Max(s.stalls).Round(time.Millisecond))
	}
	if len(s.failed) > 0 {
		fmt.Printf("  failed runs: %s (logs in %s)\n", strings.Join(s.failed, ", "), o.keep)
	}
	for _, p := range s.problems {
		fmt.Printf("  network problem: %s\n", p)
	}
	fmt.Printf("load: %s\n", stats)
	if left := testnet.NamespacesWithPrefix(fmt.Sprintf("mvd%d-", os.Getpid()%100000)); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "soak: namespaces left behind by the load:", left)
	}
	if s.passed < s.tried || len(s.problems) > 0 || interrupted || s.tried == 0 {
		return 1
	}
	return 0
}

// soak is one soak's state.
type soak struct {
	o    soakOptions
	opts testnet.Options
	net  *testnet.Net
	// onNet counts the reroutes the current network has seen.
	onNet int

	tried, passed, networks int
	failed                  []string // runs that failed, "run-NNN"
	problems                []string // networks that could not start or recover
	gaps, stalls            []time.Duration
}

func (s *soak) loop(ctx context.Context) {
	defer s.teardown("")
	startFailures := 0
	for run := 1; run <= s.o.runs && ctx.Err() == nil; {
		if s.net == nil {
			t0 := time.Now()
			n, err := testnet.Start(ctx, s.opts)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				startFailures++
				s.problems = append(s.problems, fmt.Sprintf("before run %03d: the network did not start: %v", run, err))
				fmt.Printf("network did not start (%d of %d tries): %v\n", startFailures, startTries, err)
				if startFailures >= startTries {
					fmt.Println("soak: giving up")
					return
				}
				continue
			}
			startFailures = 0
			s.net, s.onNet = n, 0
			s.networks++
			fmt.Printf("network %d up in %v (%s)\n", s.networks, time.Since(t0).Round(100*time.Millisecond), s.pathOf(ctx))
		}
		name := fmt.Sprintf("run-%03d", run)
		t0 := time.Now()
		rr, err := s.net.KillMiddleDuringDownload(ctx, soakRate, soakKillAfter, soakLimit)
		if ctx.Err() != nil {
			return // interrupted: this run counts for nothing
		}
		s.tried++
		s.onNet++
		took := time.Since(t0).Round(100 * time.Millisecond)
		killed := "?"
		if rr != nil && rr.Killed != nil {
			killed = rr.Killed.Name
		}
		if err != nil {
			fmt.Printf("run %03d FAIL net %d  killed %-3s  %v  (%v)\n", run, s.networks, killed, err, took)
			if rr != nil {
				fmt.Print(indent(s.net.Explain(rr), "    "))
			}
			s.failed = append(s.failed, name)
			s.teardown(filepath.Join(s.o.keep, name))
			run++
			continue
		}
		s.passed++
		r := rr.Record
		s.gaps = append(s.gaps, time.Duration(r.GapMillis*float64(time.Millisecond)))
		s.stalls = append(s.stalls, rr.Download.LongestStall)
		fmt.Printf("run %03d pass net %d  killed %-3s  learned +%v (%s)  gap %.0f ms  longest stall %v  same session %v  (%v)\n",
			run, s.networks, killed, r.Died.Sub(rr.KilledAt).Round(time.Millisecond), r.Why, r.GapMillis,
			rr.Download.LongestStall.Round(time.Millisecond), r.SameSession, took)
		run++
		if run > s.o.runs {
			return
		}
		if s.onNet >= s.o.perNet {
			s.teardown("")
			continue
		}
		if err := s.recover(ctx, rr.Killed); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.problems = append(s.problems, fmt.Sprintf("after run %03d: %v", run-1, err))
			fmt.Printf("network %d did not recover after run %03d: %v\n", s.networks, run-1, err)
			s.teardown(filepath.Join(s.o.keep, name+"-recover"))
		}
	}
}

// recover restarts the killed relay and waits until the network is whole again: the authorities list
// every relay as running, and the client has fetched a directory since and is connected. Without
// --restart it waits --settle and for the client to be connected.
func (s *soak) recover(ctx context.Context, killed *testnet.Node) error {
	n := s.net
	if s.o.restart {
		if err := n.Restart(killed); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.o.settle):
	}
	var listed time.Time
	if s.o.restart {
		if _, err := n.AwaitConsensus(ctx, 60*time.Second); err != nil {
			return fmt.Errorf("after restarting %s: %w", killed.Name, err)
		}
		listed = time.Now()
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		st, err := n.Status(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case st.State != "connected":
			last = "client " + st.State
		case st.Directory != nil && st.Directory.Fetched.Before(listed):
			last = fmt.Sprintf("the client's directory is from %s, before %s was listed again", st.Directory.Fetched.Format("15:04:05.000"), killed.Name)
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after restarting %s: %s", killed.Name, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// teardown closes the current network; with keep, its logs and configs are copied there first.
func (s *soak) teardown(keep string) {
	n := s.net
	if n == nil {
		return
	}
	s.net = nil
	var dir string
	if keep != "" {
		dir = n.KeepFiles()
	}
	n.Close()
	if left := n.Leftovers(); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "soak: namespaces left behind:", left)
	}
	if dir == "" {
		return
	}
	if err := copyLogs(dir, keep); err != nil {
		fmt.Printf("    copying the logs: %v (the whole folder stays in %s)\n", err, dir)
		return
	}
	os.RemoveAll(dir)
	fmt.Printf("    logs and configs: %s\n", keep)
}

// pathOf names the client's circuit, for a person.
func (s *soak) pathOf(ctx context.Context) string {
	path, err := s.net.Path(ctx)
	if err != nil {
		return err.Error()
	}
	names := make([]string, len(path))
	for i, p := range path {
		names[i] = p.Name
	}
	return "circuit " + strings.Join(names, " → ")
}

// copyLogs copies a testnet folder's logs, configs and genesis file to dst, keeping their places;
// data and state directories (keys, caches) stay behind.
func copyLogs(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if name := e.Name(); path != src && (name == "data" || name == "state") {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil // the client's control socket
		}
		if ext := filepath.Ext(path); ext != ".log" && ext != ".toml" && e.Name() != "genesis" {
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// parseDisturb reads --disturb: ns, cpu, mem, comma-separated.
func parseDisturb(s string) (testnet.Disturbance, error) {
	var d testnet.Disturbance
	for _, part := range strings.Split(s, ",") {
		switch strings.TrimSpace(part) {
		case "":
		case "ns":
			d.Namespaces = true
		case "cpu":
			d.CPU = true
		case "mem":
			d.Memory = true
		default:
			return d, fmt.Errorf("%q: want ns, cpu or mem", part)
		}
	}
	return d, nil
}

func describeDisturb(d testnet.Disturbance) string {
	var parts []string
	if d.Namespaces {
		parts = append(parts, "namespace churn")
	}
	if d.CPU {
		parts = append(parts, "every core spinning")
	}
	if d.Memory {
		parts = append(parts, "25% of free memory held and replaced")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
