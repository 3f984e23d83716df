// Command meshvpn-client connects this computer to MeshVPN: `up` starts the daemon, which owns a TUN
// device and sends all the host's IP traffic through a 3-hop circuit (guard → middle → exit); `status`
// shows the circuit and its traffic; `down` stops it and puts the host's routes back.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/network/firewall"
)

const usage = `meshvpn-client sends this computer's traffic through MeshVPN.

Usage:
  meshvpn-client up [flags]       start the daemon (root: it makes a TUN device and routes), wait until
                                  the first circuit is up, print it, and return; the daemon keeps
                                  running in the background. With --foreground it runs in this
                                  terminal until Ctrl-C, SIGTERM or "down".
  meshvpn-client status [--json]  the state (connected, silent, rebuilding, starting), the circuit
                                  (each hop), traffic, reroutes and uptime; exit 0 while a daemon
                                  runs, 3 when none does. status and down find a daemon that
                                  "up --config FILE" started without being given FILE again
  meshvpn-client down             stop the daemon: circuits closed, routes, TUN and kill switch
                                  removed (also after a daemon died). With --keep-blocking the kill
                                  switch stays: nothing leaves this computer until the next up
  meshvpn-client exits [--json] [--port tcp/25]
                                  the exits the daemon knows: country, region, bandwidth, the ports
                                  and address families they carry; * marks the one in use
  meshvpn-client directory [--json]
                                  the relays of the directory (names, addresses, flags, weights,
                                  exit ports): the running client's, or with none running, fetched
                                  from the genesis file's authorities
  meshvpn-client set-exit EXIT [--port tcp/25]
                                  move to another exit without restarting: EXIT is auto, random,
                                  country:CC, region:NAME, or an exit's identity (a name works when
                                  no other relay claims it); --port: the new exit must allow it.
                                  The new circuit is built first; connections made through the old
                                  exit are lost (status says so). If none can be built, nothing
                                  changes and the error says why.
  meshvpn-client exclude [flags] -- PROGRAM [ARGS]
                                  run PROGRAM (and what it starts) around the tunnel: in the
                                  exclude_cgroup group of the running daemon, by your own network.
                                  Run with sudo, the program runs as the user who ran sudo
  meshvpn-client check [flags]    check the configuration and the genesis file (or relay list) it
                                  names without starting: "configuration OK" (exit 0), or the
                                  errors (exit 2)
  meshvpn-client example-config   print a documented configuration file with the defaults
  meshvpn-client version          print the commit and the Go version this program was built from

IPv4 is carried, and IPv6 through an exit that carries it; otherwise IPv6 is dropped inside the
tunnel, never sent outside it. DNS goes through the exit.
The kill switch (kill_switch = true) lets nothing but the tunnel and the client's own links out from
the start of "up", and stays when the daemon stops or dies, until "down".
The configuration file (TOML, default ` + clientd.DefaultConfigPath + `) is optional; flags override it.

Flags:
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		flags(new(options)).FlagSet().PrintDefaults()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(args)
	case "status":
		err = status(args)
	case "down":
		err = down(args)
	case "exits":
		err = exits(args)
	case "directory":
		err = directory(args)
	case "set-exit":
		err = setExit(args)
	case "exclude":
		err = exclude(args)
	case "check":
		err = check(args, os.Stdout)
	case "version", "--version", "-version":
		printVersion(os.Stdout)
	case "example-config":
		fmt.Print(clientd.ExampleConfig)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		f := flags(new(options)).FlagSet()
		f.SetOutput(os.Stdout)
		f.PrintDefaults()
	default:
		err = unknownCommand(cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshvpn-client:", err)
		os.Exit(exitCode(err))
	}
}

// options are the commands' own flags (the configuration's are bound to its fields), and the
// configuration file read.
type options struct {
	config, port                             string
	foreground, json, noRoutes, keepBlocking bool
	located                                  bool // --config or --control-socket was given
	timeout                                  time.Duration
}

// flags binds the client's flags: those of the configuration over its fields (daemon.Flags), and the
// commands' own in o.
func flags(o *options) *daemon.Flags[clientd.Config] {
	type C = clientd.Config
	f := daemon.NewFlags("meshvpn-client", usage, clientd.DefaultConfig(), clientd.DefaultConfigPath, io.Discard)
	f.String("genesis", "the network's genesis file (relays come from its directory)", func(c *C) *string { return &c.Genesis })
	f.String("state-dir", "where the guard set and directory chain are kept", func(c *C) *string { return &c.StateDir })
	f.String("relays", "relay list file (without a genesis file)", func(c *C) *string { return &c.Relays })
	f.String("exit", "the exit: auto, random, country:CC, region:NAME or an exit's identity (a relay list: its name)", func(c *C) *string { return &c.Exit })
	f.String("listen", "UDP address of the client's links", func(c *C) *string { return &c.Listen })
	f.String("control-socket", "the daemon's control socket", func(c *C) *string { return &c.ControlSocket })
	f.Logging(func(c *C) *daemon.Logging { return &c.Logging })
	f.String("log-file", "where a background daemon logs", func(c *C) *string { return &c.LogFile })
	f.String("tun", "TUN device name", func(c *C) *string { return &c.TUN.Name })
	f.String("tun-backend", "TUN backend: wireguard or water", func(c *C) *string { return &c.TUN.Backend })
	f.Link(func(c *C) *daemon.LinkTimers { return &c.Link })
	f.Duration("ratchet-every", "how often circuits' layer keys move on (ratchet_every)", func(c *C) *time.Duration { return &c.RatchetEvery })
	fs := f.FlagSet()
	fs.BoolVar(&o.noRoutes, "no-routes", false, "do not route the host's traffic into the tunnel (route it yourself)")
	fs.BoolVar(&o.foreground, "foreground", false, "up: run the daemon in this terminal")
	fs.BoolVar(&o.keepBlocking, "keep-blocking", false, "down: leave the kill switch on (nothing leaves this computer until the next up)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "up: how long to wait for the first circuit")
	fs.BoolVar(&o.json, "json", false, "status, exits: print JSON")
	fs.StringVar(&o.port, "port", "", "exits: only those that allow this destination; set-exit: the new exit must allow it (tcp/PORT, udp/PORT or PORT)")
	return f
}

// parse reads the flags and the config file they name, flags winning.
func parse(args []string) (clientd.Config, options, error) {
	var o options
	f := flags(&o)
	cfg, err := f.Load(args)
	o.config = f.ConfigPath()
	o.located = f.Given("config") || f.Given("control-socket")
	if daemon.IsHelp(err) {
		fmt.Fprint(os.Stdout, usage)
		f.FlagSet().SetOutput(os.Stdout)
		f.FlagSet().PrintDefaults()
	}
	if err != nil {
		return cfg, o, err
	}
	if o.noRoutes {
		cfg.TUN.RouteAll = false
	}
	return cfg, o, nil
}

func up(args []string) error {
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if o.foreground {
		return runForeground(cfg, o)
	}
	return startBackground(cfg, o, args)
}

func runForeground(cfg clientd.Config, o options) error {
	log, err := daemon.NewLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, o.timeout)
	d, err := clientd.Start(startCtx, cfg, log)
	cancel()
	if err != nil {
		return killSwitchNote(daemon.ExplainPortTaken(err, cfg.Sockets()...))
	}
	printStatus(os.Stdout, d.Status())
	notice := daemon.Notices() // as every daemon: a line that it serves and one that it stopped, at any log level
	notice.Info("serving", zap.String("commit", daemon.Revision()), zap.Int("pid", os.Getpid()))
	down := false
	select {
	case <-ctx.Done():
	case <-d.Down():
		down = true
	}
	err = d.Close()
	notice.Info("stopped")
	if !down && cfg.KillSwitch {
		fmt.Fprintln(os.Stderr, "meshvpn-client: stopped; the kill switch stays armed: nothing leaves this computer until the next up. \"meshvpn-client down\" lifts it.")
	}
	return err
}

// startBackground starts `up --foreground` as a daemon of its own session, its output in the log
// file, and waits until it reports a circuit (or dies, showing why).
func startBackground(cfg clientd.Config, o options, args []string) error {
	ctl := clientd.Dial(cfg.ControlSocket)
	defer ctl.Close()
	if _, err := ctl.Status(context.Background()); err == nil || errors.Is(err, clientd.ErrStarting) {
		return fmt.Errorf("already running (see meshvpn-client status)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, io.SeekEnd)
	child := exec.Command(self, append([]string{"up", "--foreground"}, args...)...)
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.After(o.timeout + 5*time.Second)
	for {
		if s, err := ctl.Status(context.Background()); err == nil {
			printStatus(os.Stdout, s)
			fmt.Printf("\nThe daemon (pid %d) runs in the background; it logs to %s. \"meshvpn-client down\" stops it.\n", child.Process.Pid, cfg.LogFile)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon stopped %s:\n%s", howItEnded(err), tail(cfg.LogFile, start))
		case <-deadline:
			child.Process.Signal(syscall.SIGTERM)
			return killSwitchNote(fmt.Errorf("no circuit after %v; the daemon was stopped. Its log:\n%s", o.timeout, tail(cfg.LogFile, start)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// killSwitchNote adds to an error of up that the kill switch stays armed, if it does.
func killSwitchNote(err error) error {
	if ks, kerr := firewall.Check(firewall.Options{}); kerr == nil && ks.Armed {
		return fmt.Errorf("%w\nThe kill switch is armed: nothing leaves this computer but a tunnel, which is not up. \"meshvpn-client down\" lifts it", err)
	}
	return err
}

func tail(path string, from int64) string {
	b, _ := os.ReadFile(path)
	if from < int64(len(b)) {
		b = b[from:]
	}
	return strings.TrimSpace(string(b))
}

func status(args []string) error {
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	ctl := clientd.Dial(controlSocket(cfg, o))
	defer ctl.Close()
	s, err := ctl.Status(context.Background())
	switch {
	case errors.Is(err, clientd.ErrNotRunning):
		s = clientd.Status{State: "not running"}
		if ks, kerr := firewall.Check(firewall.Options{}); kerr == nil && ks.Armed {
			s.KillSwitch = &clientd.KillSwitchStatus{Armed: true, AllowLAN: cfg.AllowLAN, Blocked: ks.Blocked}
		}
		printNotRunning(os.Stdout, s, o.json)
		os.Exit(exitNotRunning)
	case errors.Is(err, clientd.ErrStarting):
		s = clientd.Status{State: "starting"}
		if !o.json {
			fmt.Println("MeshVPN: starting (the daemon is building its first circuit)")
			return nil
		}
	case err != nil:
		return err
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	printStatus(os.Stdout, s)
	return nil
}

// exitNotRunning is status's exit code when no daemon runs (as systemctl status's 3): 0 means one
// runs, whatever its state; 1 that status could not ask.
const exitNotRunning = 3

// controlSocket is where status and down ask: the configured socket; or, when neither --config nor
// --control-socket was given and no socket is there, the one the running daemon noted (a daemon that
// `up --config FILE` started).
func controlSocket(cfg clientd.Config, o options) string {
	if o.located {
		return cfg.ControlSocket
	}
	if _, err := os.Stat(cfg.ControlSocket); err == nil {
		return cfg.ControlSocket
	}
	if sock, ok := clientd.FindRunning(); ok {
		return sock
	}
	return cfg.ControlSocket
}

// printNotRunning is status without a daemon: a state, and the kill switch if it is armed.
func printNotRunning(w io.Writer, s clientd.Status, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return
	}
	if ks := s.KillSwitch; ks != nil && ks.Armed {
		fmt.Fprintf(w, "MeshVPN: not running; the kill switch is armed: nothing leaves this computer (%d packets blocked). \"meshvpn-client up\" connects, \"meshvpn-client down\" lifts it.\n", ks.Blocked)
		return
	}
	fmt.Fprintln(w, "MeshVPN: not running (\"meshvpn-client up\" connects)")
}

// down stops the daemon, if one runs, and then lifts the kill switch, whether that daemon or one that
// died left it, unless --keep-blocking.
func down(args []string) error {
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	ctl := clientd.Dial(controlSocket(cfg, o))
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopErr := ctl.Down(ctx)
	if stopErr != nil && !errors.Is(stopErr, clientd.ErrNotRunning) {
		return stopErr
	}
	what := "meshvpn-client is down: circuits closed, routes and the TUN device removed"
	if stopErr != nil {
		what = "meshvpn-client was not running"
	}
	// A daemon that died left the resolv.conf file it replaced; one that stopped put it back itself.
	dnsRestored, err := clientd.RestoreDNS(cfg, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshvpn-client: putting back %s: %v\n", cfg.DNS.ResolvConf, err)
	} else if dnsRestored {
		what += "; the DNS configuration it replaced is put back"
	}
	// A dead daemon's programs around the tunnel go through it no more.
	if err := clientd.RemoveAppSplit(); err != nil {
		fmt.Fprintf(os.Stderr, "meshvpn-client: %v\n", err)
	}
	if o.keepBlocking {
		if ks, err := firewall.Check(firewall.Options{}); err != nil || !ks.Armed {
			fmt.Printf("%s; no kill switch is armed (kill_switch = false?): traffic is not blocked.\n", what)
			return err
		}
		// Nothing at all: the block again, without the holes split tunnelling made in it.
		if _, err := firewall.Arm(firewall.Config{TUN: cfg.TUN.Name, AllowLAN: cfg.AllowLAN}); err != nil {
			return fmt.Errorf("%s, but the kill switch could not be closed to split tunnelling: %w", what, err)
		}
		fmt.Printf("%s; the kill switch stays armed: nothing leaves this computer until the next up (\"meshvpn-client down\" lifts it).\n", what)
		return nil
	}
	removed, err := firewall.Disarm(firewall.Options{})
	if err != nil {
		return fmt.Errorf("%s, but the kill switch could not be lifted: %w", what, err)
	}
	switch {
	case removed:
		fmt.Printf("%s; the kill switch is lifted.\n", what)
	case stopErr != nil && !dnsRestored:
		fmt.Println("meshvpn-client was not running; nothing to stop.") // down twice is no error
	default:
		fmt.Printf("%s.\n", what)
	}
	return nil
}

func exits(args []string) error {
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	var proto path.Proto
	var port uint16
	if o.port != "" {
		if proto, port, err = clientd.ParsePort(o.port); err != nil {
			return err
		}
	}
	ctl := clientd.Dial(controlSocket(cfg, o))
	defer ctl.Close()
	l, err := ctl.Exits(context.Background())
	if err != nil {
		return err
	}
	if port != 0 {
		kept := l.Exits[:0]
		for _, e := range l.Exits {
			sum, err := exitports.Parse(e.Ports)
			if err == nil && (proto == path.TCP && sum.AllowsTCP(port) || proto == path.UDP && sum.AllowsUDP(port)) {
				kept = append(kept, e)
			}
		}
		l.Exits = kept
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	printExits(os.Stdout, l, o.port)
	return nil
}

func printExits(w io.Writer, l clientd.ExitList, port string) {
	if len(l.Exits) == 0 {
		if port != "" {
			fmt.Fprintf(w, "No exit of the %s allows %s.\n", l.Source, port)
		} else {
			fmt.Fprintf(w, "The %s lists no exit.\n", l.Source)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  EXIT\tCOUNTRY\tREGION\tBANDWIDTH\tSTATE\tFAMILIES\tPORTS\tIDENTITY")
	for _, e := range l.Exits {
		mark := " "
		if e.InUse {
			mark = "*"
		}
		bw := "-"
		if e.Bandwidth > 0 {
			bw = bytesText(e.Bandwidth) + "/s"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, e.Name, dash(e.Country), dash(e.Region), bw, e.State,
			strings.Join(e.Families, ","), e.Ports, e.Identity)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d exits from the %s; * is in use. \"meshvpn-client set-exit IDENTITY\" (or country:CC, region:NAME, auto, random) moves to another.\n", len(l.Exits), l.Source)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func setExit(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("set-exit: name the exit first: meshvpn-client set-exit auto|random|country:CC|region:NAME|IDENTITY [--port tcp/PORT]")
	}
	asked, args := args[0], args[1:]
	cfg, o, err := parse(args)
	if err != nil {
		return err
	}
	ctl := clientd.Dial(controlSocket(cfg, o))
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	mv, err := ctl.SetExit(ctx, clientd.SetExitRequest{Exit: asked, Port: o.port})
	if err != nil {
		return err
	}
	if mv.Stayed {
		fmt.Printf("The exit in use, %s, fits %s: nothing changed, connections go on. Rebuilds keep to the new choice.\n", mv.To, asked)
		return nil
	}
	fmt.Printf("Moved to exit %s (asked: %s) through %s.\nConnections made through %s were lost; new ones go out through %s.\n",
		mv.To, asked, strings.Join(mv.Path, " → "), mv.From, mv.To)
	return nil
}

func printStatus(w io.Writer, s clientd.Status) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "MeshVPN: %s (up %s, TUN %s, MTU %d)\n", s.State, (time.Duration(s.UptimeSec * float64(time.Second))).Round(time.Second), s.TUN, s.MTU)
	if q := s.Silent; q != nil {
		where := "every hop answers a probe: what is silent lies beyond the exit"
		if q.Hop != "" {
			where = fmt.Sprintf("no answer from the %s (%s)", q.Hop, q.HopName)
		}
		fmt.Fprintf(&b, "  no traffic back through the circuit for %.0f s while sending: %s. A relay that lost its next hop tears the circuit down within its links' dead_after; the client then rebuilds.\n", q.Seconds, where)
	}
	for _, h := range s.Circuit.Hops {
		fmt.Fprintf(&b, "  %-6s %-12s %-22s %s…", h.Role, h.Name, h.Address, h.Identity[:min(12, len(h.Identity))])
		if h.Link != "" {
			fmt.Fprintf(&b, "  link: %s", h.Link)
		}
		b.WriteByte('\n')
	}
	if x := s.Exit; x.Asked != "" {
		fmt.Fprintf(&b, "  exit choice: %s", x.Asked)
		switch {
		case x.Port != "" && x.Required:
			fmt.Fprintf(&b, ", must allow %s", x.Port)
		case x.Port != "":
			fmt.Fprintf(&b, ", %s preferred", x.Port)
		}
		if x.Pinned {
			b.WriteString(" (pinned: rebuilds wait for this exit)")
		}
		b.WriteByte('\n')
	}
	if dir := s.Directory; dir != nil {
		fmt.Fprintf(&b, "  directory: %d relays, agreed by %d authorities, fetched %s\n", dir.Relays, dir.Authorities, dir.Fetched.Format(time.TimeOnly))
	}
	if n := s.NAT; n != nil {
		if n.Mapping != "" {
			fmt.Fprintf(&b, "  NAT: %s mapping, seen as %s by %d STUN servers\n", n.Mapping, n.Public, n.Servers)
		} else {
			fmt.Fprintf(&b, "  NAT: not known yet (%s)\n", n.Error)
		}
	}
	if k := s.KillSwitch; k != nil {
		state := "armed: nothing leaves but the tunnel and the client's links"
		if k.AllowLAN {
			state += " and the LAN (allow_lan)"
		}
		if !k.Armed {
			state = "NOT ARMED (its table is gone; the next up puts it back)"
		}
		fmt.Fprintf(&b, "  kill switch: %s; %d packets blocked\n", state, k.Blocked)
	}
	t := s.Traffic
	fmt.Fprintf(&b, "  traffic: %s out (%d packets), %s in (%d packets)\n", bytesText(t.BytesOut), t.PacketsOut, bytesText(t.BytesIn), t.PacketsIn)
	var drops []string
	for k, v := range s.Drops {
		if v > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", k, v))
		}
	}
	sort.Strings(drops)
	if len(drops) > 0 {
		fmt.Fprintf(&b, "  not carried: %s\n", strings.Join(drops, ", "))
	}
	if len(s.Refused) > 0 {
		var refused []string
		for k, v := range s.Refused {
			refused = append(refused, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(refused)
		fmt.Fprintf(&b, "  refused on the way out (the exit's policy): %s; \"meshvpn-client exits --port tcp/PORT\" lists exits that allow one\n", strings.Join(refused, ", "))
	}
	for _, dt := range s.Detours {
		state := "up"
		if !dt.Up {
			state = "opening"
		}
		fmt.Fprintf(&b, "  detour: %s through %s (a second circuit, %s): the main exit refuses them\n", strings.Join(dt.Flows, ", "), strings.Join(dt.Path, " → "), state)
	}
	if len(s.NoExitAllows) > 0 {
		fmt.Fprintf(&b, "  no exit allows: %s (refused; tried again in a few minutes)\n", strings.Join(s.NoExitAllows, ", "))
	}
	for _, m := range s.ExitMoves {
		if m.Stayed {
			fmt.Fprintf(&b, "  set-exit %s at %s: the exit in use, %s, fits; connections went on\n", m.Asked, m.At.Format(time.TimeOnly), m.To)
			continue
		}
		fmt.Fprintf(&b, "  exit moved %s: %s → %s (set-exit %s); new exit session: connections through %s were lost\n", m.At.Format(time.TimeOnly), m.From, m.To, m.Asked, m.From)
	}
	for _, r := range s.Reroutes {
		kept := "the exit kept the session"
		if !r.SameSession {
			kept = "new exit session: open connections were lost"
		}
		fmt.Fprintf(&b, "  rerouted %s: %s; %s without traffic (the rebuild took %.0f ms); now %s; %s\n", r.Died.Format(time.TimeOnly), r.Why, durationText(r.OutageMillis), r.GapMillis, strings.Join(r.Path, " → "), kept)
	}
	w.Write(b.Bytes())
}

// durationText writes a duration in milliseconds as "4 ms" or "27.3 s".
func durationText(ms float64) string {
	if ms < 1000 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
