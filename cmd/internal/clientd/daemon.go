// Package clientd is the meshvpn-client daemon: it owns a TUN device, routes the host's traffic into
// it, keeps a 3-hop circuit up through relays from the relay list, and answers `status` and `down` on
// a local control socket.
package clientd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/circmgr"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/detour"
	"github.com/meshvpn/meshvpn/core/engine"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/network/appsplit"
	"github.com/meshvpn/meshvpn/network/firewall"
	"github.com/meshvpn/meshvpn/network/link"
	"github.com/meshvpn/meshvpn/network/natcheck"
	"github.com/meshvpn/meshvpn/network/route"
	"github.com/meshvpn/meshvpn/network/sysdns"
	"github.com/meshvpn/meshvpn/network/tun"
)

// Daemon is a running client.
type Daemon struct {
	cfg     Config
	log     *zap.Logger
	started time.Time

	engine  *engine.Engine
	client  *client.Client
	mgr     *circmgr.Manager
	routes  *route.Table
	fw      *firewall.KillSwitch        // nil with kill_switch = false
	apps    *appsplit.Split             // per-application split tunnelling; nil when off
	detours *detour.Detours             // second circuits for refused flows; nil when off
	domains atomic.Pointer[domainSplit] // split tunnelling by name; nil when off
	dns     *sysdns.Setting             // the host's DNS pointed at the tunnel; nil while it is not
	control *controlServer
	metrics *daemon.MetricsServer
	// stack is what Start started, stopped in reverse by Close; its context is the daemon's, which
	// its goroutines (the directory refresher, NAT detection, the first lookups of names) end with.
	stack *daemon.Stack

	ready   atomic.Bool      // Start has finished: the fields above are set and Status may read them
	down    chan struct{}    // closed when `down` asks the daemon to stop
	fetcher *netdir.Fetcher  // nil with a relay list
	genesis *genesis.Genesis // nil with a relay list
	// authorities are the addresses of the genesis file's authorities, which a fetch around the
	// tunnel routes outside it, and lets through the kill switch, for its length.
	authorities []netip.AddrPort
	nat         *natcheck.Watch // nil without STUN servers
	picker      *dirPicker
	// listPicker and listExits are the relay list's (nil with a directory): path selection over the
	// list, which set-exit picks over too.
	listPicker *dirPicker
	listExits  []ExitInfo
	setExitMu  sync.Mutex // one set-exit at a time
	exitMu     sync.Mutex
	exitChoice ExitChoiceStatus             // the choice in force, for status
	mainExit   atomic.Pointer[netdir.Relay] // the main circuit's exit, set with each new circuit
	downOnce   sync.Once
}

// LoadRelays reads the relay list file.
func LoadRelays(path string) ([]netdir.Relay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, relaylist.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("relay list %s: %w", path, err)
	}
	es, err := relaylist.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return es, nil
}

// builder adapts the daemon's *client.Client to circmgr.Builder. It holds the daemon, not the client,
// because the manager is made (checking the relay list) before the client exists.
type builder struct{ d *Daemon }

func (b builder) Build(ctx context.Context, path []netdir.Relay) (circmgr.Circuit, error) {
	c, err := b.d.client.Build(ctx, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Start brings the client up and returns once the first circuit carries traffic (or ctx ends).
func Start(ctx context.Context, cfg Config, log *zap.Logger) (_ *Daemon, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := daemon.NeedNetAdmin("the client makes a TUN device, routes and the kill switch's firewall table", "run it with sudo"); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, started: time.Now(), down: make(chan struct{}), exitChoice: initialExitChoice(cfg), stack: daemon.NewStack(context.Background())}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	mc := circmgr.Config{
		Builder: builder{d},
		OnPath:  d.bypassGuard,
		OnCircuit: func(c circmgr.Circuit, p []netdir.Relay) {
			d.mainExit.Store(&p[len(p)-1])
			d.engine.SetRoute(c.(*client.Circuit), p[len(p)-1].IPv6)
		},
		Logger: log.Named("circuits"),

		MaxLifetime: cfg.MaxCircuitLifetime,
	}
	// The relays are known (the directory agreed on, or the relay list checked: enough relays, an
	// exit, the one named) before anything is opened: a network that cannot work must not cost the
	// host a TUN device and its routes.
	if cfg.Genesis != "" {
		if err := d.loadGenesis(ctx); err != nil {
			return nil, err
		}
		// The first fetch is this daemon's first packet out: the kill switch goes in before it.
		if err := d.openControl(); err != nil {
			return nil, err
		}
		if mc.Picker, err = d.firstDirectory(ctx); err != nil {
			return nil, err
		}
		// An exit the user named is theirs: rebuilds wait for it rather than move elsewhere.
		mc.ExitPinned = d.picker.choice.Mode == path.Named
	} else {
		relays, err := LoadRelays(cfg.Relays)
		if err != nil {
			return nil, err
		}
		if d.listPicker, err = newListPicker(relays, cfg.Exit); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Relays, err)
		}
		mc.Picker, mc.ExitPinned = d.listPicker, cfg.Exit != ""
		d.listExits = listExits(relays)
	}
	if d.mgr, err = circmgr.New(mc); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Relays, err) // only a relay list can be refused here
	}
	if d.control == nil {
		if err := d.openControl(); err != nil {
			return nil, err
		}
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(cfg.Listen)))
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if d.fw != nil {
		if err := d.fw.AllowLinkPort(uint16(conn.LocalAddr().(*net.UDPAddr).Port)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	dev, err := tun.Open(tun.Config{Name: cfg.TUN.Name, MTU: cfg.mtu(), Backend: tun.Backend(cfg.TUN.Backend), Addr: netip.MustParsePrefix(cfg.TUN.Address), Addr6: cfg.addr6(), Up: true})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("TUN: %w", err)
	}
	if d.engine, err = engine.NewDual(dev, netip.MustParsePrefix(cfg.TUN.Address).Addr(), cfg.addr6().Addr(), log.Named("engine")); err != nil {
		dev.Close()
		conn.Close()
		return nil, err
	}
	d.stack.Closer("engine", d.engine)
	e := d.engine
	node, err := client.NewNode(conn, link.Config{KeepaliveInterval: cfg.Link.KeepaliveInterval, DeadAfter: cfg.Link.DeadAfter, Logger: log.Named("client")})
	if err != nil {
		conn.Close()
		return nil, err
	}
	d.client, err = client.New(client.Config{
		Node: node,
		OnData: func(_ *client.Circuit, data []byte) {
			if ds := d.domains.Load(); ds != nil {
				ds.observe(data) // before the program that asked reads the answer
			}
			e.Deliver(data)
		},
		Logger:       log.Named("client"),
		RatchetEvery: cfg.RatchetEvery,
	})
	if err != nil {
		node.Close()
		return nil, err
	}
	d.stack.Closer("client", d.client)
	var prober *natcheck.Prober // on the client's socket, registered before the node reads it
	if d.genesis != nil && len(d.genesis.STUN) > 0 {
		prober = natcheck.NewProber(node.WriteTo)
		if err := node.HandleOther(prober.Handle); err != nil {
			return nil, err
		}
	}
	if err := node.Start(); err != nil {
		return nil, err
	}
	if cfg.TUN.RouteAll {
		if d.routes, err = route.New(cfg.TUN.Name); err != nil {
			return nil, err
		}
		d.stack.Closer("routes", d.routes)
		exclude, _ := cfg.split()
		for _, p := range exclude {
			if err := d.routes.Exclude(p); err != nil {
				return nil, err
			}
		}
		if err := d.startAppSplit(); err != nil {
			return nil, err
		}
		d.startDomainSplit()
	}
	if d.genesis != nil && len(d.genesis.STUN) > 0 {
		d.nat = &natcheck.Watch{Prober: prober, Servers: d.genesis.STUN, Local: d.client.LocalAddr, Logger: log.Named("nat")}
		for _, s := range d.genesis.STUN {
			if d.fw != nil {
				if err := d.fw.AllowPeer(s.Addr()); err != nil {
					return nil, err
				}
			}
			if d.routes != nil {
				if err := d.routes.Bypass(s.Addr()); err != nil { // STUN asks about the socket's own path
					return nil, fmt.Errorf("route for STUN server: %w", err)
				}
			}
		}
		d.stack.Go(d.nat.Run)
	}
	d.stack.Func("circuits", d.mgr.Close)
	if err := d.mgr.Start(ctx); err != nil {
		return nil, err
	}
	if cfg.Detour && d.picker != nil {
		if err := d.startDetours(); err != nil {
			return nil, err
		}
	}
	if d.routes != nil {
		if _, include := cfg.split(); len(include) > 0 {
			err = d.routes.TunnelOnly(include)
		} else {
			err = d.routes.TunnelAll()
		}
		if err != nil {
			return nil, err
		}
	}
	if err := d.pointDNS(); err != nil {
		return nil, err
	}
	if d.domains.Load() != nil {
		d.stack.Go(d.resolveDomains)
	}
	if cfg.Metrics != "" {
		if d.metrics, err = daemon.ServeMetrics(cfg.Metrics, false, log, &collector{d: d}, daemon.LinkMetrics(d.client.LinkStats)); err != nil {
			return nil, err
		}
		d.stack.Closer("metrics", d.metrics)
	}
	if d.fetcher != nil {
		d.stack.Go(d.refreshDirectory)
	}
	d.ready.Store(true)
	log.Info("connected", zap.Int("hops", len(d.Status().Circuit.Hops)))
	return d, nil
}

// bypassGuard keeps the way to a path's guard outside the tunnel, and open through the kill switch,
// before the client dials it. A guard behind a NAT is dialled through its rendezvous, which then
// relays the link's packets or introduces the two ends for a punched path to the guard's address: both
// must stay outside.
func (d *Daemon) bypassGuard(path []netdir.Relay) error {
	guard := path[0]
	addrs := []netip.Addr{guard.Addr.Addr()}
	if len(guard.Rendezvous) > 0 { // the client dials the first
		addrs = []netip.Addr{guard.Rendezvous[0].Addr.Addr(), guard.Addr.Addr()}
	}
	for _, a := range addrs {
		if d.fw != nil {
			if err := d.fw.AllowPeer(a); err != nil {
				return err
			}
		}
		if d.routes != nil {
			if err := d.routes.Bypass(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// openControl opens the control socket, where a second daemon fails before it touches anything, and
// arms the kill switch (replacing one a dead daemon left) before this daemon sends its first packet.
func (d *Daemon) openControl() (err error) {
	if d.control, err = listenControl(d.cfg.ControlSocket, d); err != nil {
		return err
	}
	d.stack.Func("control socket", d.control.Close)
	d.noteRunning()
	// No other daemon runs: a resolv.conf file a dead one replaced goes back now (dns.go).
	if restored, err := RestoreDNS(d.cfg, d.log); err != nil {
		d.log.Warn("putting back the resolv.conf file an earlier run replaced", zap.Error(err))
	} else if restored {
		d.log.Info("put back the resolv.conf file an earlier run replaced")
	}
	if d.cfg.KillSwitch {
		exclude, include := d.cfg.split()
		if d.fw, err = firewall.Arm(firewall.Config{TUN: d.cfg.TUN.Name, AllowLAN: d.cfg.AllowLAN, Exclude: exclude, Include: include, OutsideMark: d.cfg.outsideMark()}); err != nil {
			return err
		}
	}
	return nil
}

// Down is closed when a `down` request asks the daemon to stop.
func (d *Daemon) Down() <-chan struct{} { return d.down }

func (d *Daemon) requestDown() { d.downOnce.Do(func() { close(d.down) }) }

// Status returns a snapshot of the daemon.
func (d *Daemon) Status() Status { return d.status(true) }

// status is Status; probe lets it probe a silent circuit's hops to say where it went silent (the
// user's `status` does, a metrics scrape does not: it would send probes every scrape).
func (d *Daemon) status(probe bool) Status {
	now := time.Now()
	s := Status{PID: os.Getpid(), Started: d.started, UptimeSec: now.Sub(d.started).Seconds(), TUN: d.cfg.TUN.Name, MTU: d.cfg.mtu(), State: "starting"}
	if d.engine != nil {
		es := d.engine.Stats()
		s.Traffic = Traffic{PacketsOut: es.PacketsOut, PacketsIn: es.PacketsIn, BytesOut: es.BytesOut, BytesIn: es.BytesIn, Detoured: es.Detoured, RefusalsHeld: es.RefusalsHeld}
		s.Drops = map[string]uint64{
			"ipv6": es.DropIPv6, "no_circuit": es.DropNoCircuit, "too_big": es.DropTooBig,
			"malformed": es.DropMalformed, "circuit_refused": es.DropSend, "tun": es.DropTUN,
			"foreign_source": es.DropForeignSource,
		}
	}
	if d.client != nil {
		cs := d.client.Stats()
		s.KeyRatchets, s.KeysErased = cs.KeyRatchets, cs.KeysErased
	}
	if d.nat != nil {
		s.NAT = natStatus(d.nat)
	}
	if d.fw != nil {
		ks, err := firewall.Check(firewall.Options{})
		s.KillSwitch = &KillSwitchStatus{Armed: ks.Armed, AllowLAN: d.cfg.AllowLAN, Blocked: ks.Blocked}
		if err != nil {
			s.KillSwitch.Error = err.Error()
		}
	}
	if d.picker != nil {
		s.Directory = &DirectoryStatus{}
		if dir := d.picker.Dir(); dir != nil {
			s.Directory = &DirectoryStatus{Relays: dir.Len(), Fetched: dir.Fetched(), Authorities: len(dir.Sources())}
		}
	}
	if d.mgr == nil {
		return s
	}
	ms := d.mgr.Status()
	d.exitStatus(&s, ms)
	d.detourStatus(&s)
	s.State = "rebuilding"
	if ms.Up {
		s.State = "connected"
		if s.Silent = d.silence(now, ms.Path, probe); s.Silent != nil {
			s.State = "silent"
		}
	}
	s.Builds, s.BuildFailures = ms.Builds, ms.Failures
	for i, r := range ms.Path {
		h := Hop{Role: roleOf(i, len(ms.Path)), Name: r.Name, Address: r.Addr.String(), Identity: r.Identity.String()}
		if i == 0 && d.client != nil {
			h.Link = linkText(d.client, r)
		}
		s.Circuit.Hops = append(s.Circuit.Hops, h)
	}
	if !ms.Since.IsZero() {
		s.Circuit.Since, s.Circuit.AgeSec = ms.Since, now.Sub(ms.Since).Seconds()
	}
	for _, r := range ms.Reroutes {
		s.Reroutes = append(s.Reroutes, Reroute{Died: r.Died, GapMillis: millis(r.Gap()), OutageMillis: millis(r.Outage()), Why: r.Why, Path: r.Path, SameSession: r.SameSession})
	}
	s.Replaced = ms.Replaced
	for _, r := range ms.Replacements {
		s.Replacements = append(s.Replacements, Replacement{At: r.At, Path: r.Path, SameSession: r.SameSession})
	}
	return s
}

// linkText describes the client's link to the relay: how its packets travel.
func linkText(c *client.Client, r netdir.Relay) string {
	p, ok := c.LinkPath(r.LinkKey)
	var via netip.AddrPort // the rendezvous the client dials a relay behind a NAT through: the first
	if len(r.Rendezvous) > 0 {
		via = r.Rendezvous[0].Addr
	}
	switch {
	case !ok:
		return ""
	case p.Kind == link.PathDirect:
		return p.Kind.String()
	case p.Kind == link.PathPunched && p.RTT > 0:
		return fmt.Sprintf("%s via %s (direct round trip %v)", p.Kind, via, p.RTT.Round(10*time.Microsecond))
	}
	return fmt.Sprintf("%s via %s", p.Kind, via)
}

// Close takes the client down and leaves the host as it was: circuits torn down (the relays are
// told), routes removed, the TUN device gone, the control socket removed.
func (d *Daemon) Close() error { return d.stack.Close() }

// loadGenesis reads the genesis file and resolves its authorities' addresses (a name among them needs
// DNS now, before the kill switch blocks it), and readies the fetcher and the picker.
func (d *Daemon) loadGenesis(ctx context.Context) error {
	g, err := daemon.LoadGenesis(d.cfg.Genesis) // a ConfigError: exit 2, as in every program
	if err != nil {
		return err
	}
	d.genesis = g
	pins := map[string][]netip.AddrPort{}
	for _, a := range g.Authorities {
		addrs, err := daemon.ResolveURL(ctx, a.URL)
		if err != nil {
			d.log.Warn("a directory authority's address", zap.String("url", a.URL), zap.Error(err))
			continue
		}
		d.authorities = append(d.authorities, addrs...)
		if hp, ok := dialAddr(a.URL); ok {
			pins[hp] = addrs
		}
	}
	if err := os.MkdirAll(d.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	if d.fetcher, err = netdir.NewFetcher(g, filepath.Join(d.cfg.StateDir, "directory-chain"), d.log.Named("directory")); err != nil {
		return err
	}
	d.fetcher.SetHTTPClient(pinnedClient(pins))
	d.picker, err = newDirPicker(d.cfg, d.log.Named("path"))
	return err
}

// firstDirectory fetches the first directory, the authorities let through the kill switch for as long,
// and returns the picker over it.
func (d *Daemon) firstDirectory(ctx context.Context) (*dirPicker, error) {
	defer d.allowAuthorities()()
	net, err := d.fetcher.FetchUntil(ctx)
	if errors.Is(err, netdir.ErrWrongGenesis) {
		return nil, daemon.Misconfigured(fmt.Errorf("genesis %s: %w", d.cfg.Genesis, err))
	}
	if err != nil {
		return nil, err
	}
	// The first fetch went around the tunnel, which is not up yet: its connections close now, before
	// the routes send their packets into the tunnel.
	d.fetcher.CloseIdleConnections()
	if err := d.picker.update(net); err != nil {
		return nil, err
	}
	d.log.Info("directory", zap.Int("relays", net.Len()), zap.Int("authorities", len(net.Sources())))
	// A path this directory can never give fails now, naming the fix, rather than after the start's
	// timeout: waiting does not move relays to other networks or bring a relay that does not exist.
	if _, err := d.picker.Pick(nil, nil, 0); err != nil {
		if hint := pathHint(err); hint != "" {
			return nil, daemon.Misconfigured(fmt.Errorf("%w: %s", err, hint))
		}
	}
	return d.picker, nil
}

// pathHint names the fix for a path selection failure that waiting does not cure, or is "".
func pathHint(err error) string {
	switch {
	case errors.Is(err, path.ErrSameSubnet):
		return "the network's relays share too few /16 networks for a 3-hop path (two hops never share one); on a test network on one machine set allow_same_subnet = true"
	case errors.Is(err, path.ErrNoSuchRelay):
		return "the exit named by `exit` is not in the directory (`meshvpn-client exits` lists those that are; a name is taken only when one relay alone carries it)"
	}
	return ""
}

// The directory is refreshed through the tunnel while a circuit is up: the exit carries fetches to the
// network's authorities (exit/policy's Directory), so no authority learns who the client is, as Tor
// clients fetch through their circuits. Without a circuit for outsideAfter, the fetch goes around the
// tunnel instead, at most every outsideEvery: a stale directory (an exit that moved its rendezvous, a
// relay with new keys) can make every rebuild fail, and there is no circuit to fetch a fresh one
// through. That fetch shows the client's address to the authorities, as the first one at start does.
const (
	outsideAfter = 5 * time.Second
	outsideEvery = 10 * time.Second
)

// refreshDirectory keeps the directory fresh: every directory_refresh through the tunnel, and around
// it while the client has had no circuit for a while. A fetch that fails keeps the one in use (until
// its documents expire, when Combine refuses them).
func (d *Daemon) refreshDirectory(ctx context.Context) {
	var failed daemon.Repeats
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := time.Now().Add(d.cfg.DirectoryRefresh)
	var lastOutside time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		s := d.mgr.Status()
		outside := !s.Up && now.Sub(s.Down) >= outsideAfter && now.Sub(lastOutside) >= outsideEvery
		if !outside && (!s.Up || now.Before(next)) {
			continue // not due, or due but with no circuit to carry it yet
		}
		if outside {
			lastOutside = now
			d.log.Info("fetching the directory around the tunnel: no circuit", zap.Duration("for", now.Sub(s.Down).Round(time.Second)))
		}
		net, err := d.fetchDirectory(ctx, outside)
		if err != nil {
			failed.Warn(d.log, "directory refresh failed; keeping the one in use", zap.Bool("around_tunnel", outside), zap.Error(err))
			continue
		}
		failed.Reset()
		next = time.Now().Add(d.cfg.DirectoryRefresh)
		if err := d.picker.update(net); err != nil {
			d.log.Warn("directory refresh", zap.Error(err))
		}
	}
}

// fetchDirectory fetches the directory once, around the tunnel when outside is set.
func (d *Daemon) fetchDirectory(ctx context.Context, outside bool) (*netdir.NetDir, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// No connection outlives a fetch: one made on one path would be carried on the other once the
	// routes change (the client's engine drops what enters the tunnel from a connection made outside).
	// The deferred close runs before the routes are released, so its FIN takes the fetch's path.
	d.fetcher.CloseIdleConnections()
	if outside {
		defer d.allowAuthorities()()
		if d.routes != nil {
			for _, a := range d.authorities {
				if err := d.routes.Bypass(a.Addr()); err != nil {
					d.log.Info("a route around the tunnel to an authority", zap.Error(err))
					continue
				}
				defer d.routes.Release(a.Addr())
			}
		}
	}
	defer d.fetcher.CloseIdleConnections()
	return d.fetcher.Fetch(ctx, time.Now())
}
