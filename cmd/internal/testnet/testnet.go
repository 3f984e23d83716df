// Package testnet builds a whole MeshVPN network on one machine, each node a process of its own in a
// network namespace of its own, joined by veth pairs and bridges, with real TUN devices, kernel
// routing and kernel NAT:
//
//	hub    a bridge every node hangs on (10.240.0.0/24, "the internet")
//	boot1, boot2  meshvpn-dht-bootstrap: the DHT's first nodes, each with a STUN server (10.240.0.2, .3)
//	a1…a3  meshvpn-discovery: authorities that crawl the DHT, probe the relays and sign directories
//	r1…r5  meshvpn-exit-node --relay-only     x1, x2 meshvpn-exit-node (also on the web network)
//	cl     meshvpn-client up --foreground: TUN mvc0, the whole internet routed into it
//	web    an HTTP server (in this process) and iperf3 at 203.0.113.10, reachable only through an exit;
//	       the web network has IPv6 too (2001:db8:113::/64): the server answers at 2001:db8:113::10,
//	       the exits are 2001:db8:113::1, ::2 …, and with Options.IPv6 they carry their clients' IPv6
//
// The network starts from a genesis file the testnet writes, naming the authorities and the
// bootstrap node: relays publish themselves on the DHT, the authorities find, probe and list them,
// and the client builds its circuit from the directory a majority of them agree on. (With
// Options.RelayList the client reads a relay list instead, and there is no DHT or authority.)
//
// Every node is started from its own config file and data directory, exactly as an operator or a
// user would run it; the testnet reads what they do from their metrics and the client's control
// socket. Every namespace is named with a per-run prefix; Close stops every process it started (by
// PID) and removes every namespace, also after a failure.
package testnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
	"github.com/meshvpn/meshvpn/cmd/internal/exitnode"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/network/tamper"
	"github.com/meshvpn/meshvpn/network/tun"
)

const (
	// WebAddr is the web server's address: on the web network, which only exits reach.
	WebAddr = "203.0.113.10"
	// ClientTUNAddr is the client's address inside the tunnel.
	ClientTUNAddr = "10.99.0.2"
	// ClientAddr is the client's address on the hub.
	ClientAddr = "10.240.0.100"
	// WebAddr2 is a second address of the web server, for tests that send one destination around the
	// tunnel and another through it.
	WebAddr2 = "203.0.113.20"
	// webHubAddr is the web network's router on the hub with Options.DirectWeb: the client's own way
	// to the internet, around the tunnel.
	webHubAddr = "10.240.0.250"
	// WebAddr6 is the web server's IPv6 address, on the web network as WebAddr.
	WebAddr6 = "2001:db8:113::10"
	// ClientAddr6 is the client's IPv6 address on the hub with Options.ClientIPv6, and hubAddr6 the
	// hub's, the client's IPv6 router: IPv6 that left the client outside its tunnel would go there.
	ClientAddr6 = "2001:db8:240::100"
	hubAddr6    = "2001:db8:240::1"
	// ExitPool6 is the exits' IPv6 session pool with Options.IPv6.
	ExitPool6 = "fd00:8::/112"
	relayPort = 7000
	// metricsAddr is where every node serves metrics, inside its own namespace.
	metricsAddr = "127.0.0.1:9310"
	// clientMetricsAddr is where the client daemon serves metrics, inside its namespace.
	clientMetricsAddr = "127.0.0.1:9311"
)

// TUNMTU is the client's TUN MTU.
var TUNMTU = clientd.DefaultMTU

// Node is one relay or exit of the testnet: a meshvpn-exit-node process.
type Node struct {
	Name string
	Addr netip.Addr // on the hub: the node's own, or its router's behind a NAT
	// Listen is where the node's process binds: Addr, or its LAN address behind a NAT.
	Listen netip.Addr
	NAT    NATKind
	Exit   bool
	Entry  netdir.Relay
	ns     *namespace
	dir    string
	proc   *process
}

// Net is a running testnet.
type Net struct {
	Prefix string
	Relays []*Node // relays then exits
	Exits  []*Node
	Web    *WebServer
	// Resolver is the internet's DNS server (resolver.go), which the exits' resolv.conf names.
	Resolver *Resolver
	// Socket is the client daemon's control socket.
	Socket string
	// Authorities, Genesis and GenesisFile are the network's discovery authorities and its trust
	// anchor (none with Options.RelayList).
	Authorities []*Authority
	Genesis     *genesis.Genesis
	GenesisFile string
	// Consensus is the directory the client started from.
	Consensus *netdir.NetDir

	dir    string // configs, data directories and logs of this run
	keep   bool   // Close leaves dir in place
	bin    string
	ns     []*namespace
	cl, wb *namespace
	client *process
	boot   []*process
	// routers counts the NAT routers made, for their LANs' addresses.
	routers int
	// tamperer is the attacker of Options.Tamper.
	tamperer *tamper.Proxy

	ratchet  time.Duration     // Options.RatchetEvery
	lifetime time.Duration     // Options.CircuitLifetime
	ipv6     bool              // Options.IPv6
	policies map[string]string // Options.ExitPolicy
	firstDay bool              // Options.FirstDay
}

// Options size the testnet.
type Options struct {
	Relays, Exits int
	Backend       tun.Backend
	// Bin is the folder holding meshvpn-exit-node and meshvpn-client (default: this program's own).
	Bin string
	// Exit is the exit the client uses (default x1).
	Exit string
	// RelayList gives the client a relay list file instead of the genesis: no DHT, no authorities.
	RelayList bool
	// NAT puts nodes behind emulated NATs of their own, by name: r1…, x1…, and "cl" for the client.
	NAT map[string]NATKind
	// EntryGuard, if set, names the only relay the client may take as its guard (entry_guards).
	EntryGuard string
	// Tamper, if set, puts an attacker on the wire between the client and its guard, in a router of
	// the client's own (a home NAT): a tamper.Proxy that does this to every datagram both ways
	// (Net.Tamperer), from the moment the client has its circuit (a lost CREATE would only slow the
	// start down). It needs EntryGuard.
	Tamper *tamper.Config
	// RatchetEvery is every node's and the client's ratchet_every, how often circuits' layer keys
	// move on (default 5 s: short, so that every testnet run goes through many ratchets).
	RatchetEvery time.Duration
	// CircuitLifetime, if set, is the client's max_circuit_lifetime: how long one circuit carries its
	// traffic before it moves, make before break, to a fresh one (default: the client's, 3 h).
	CircuitLifetime time.Duration
	// IPv6 makes the exits carry IPv6 (exit.pool6 = ExitPool6); without it they drop it.
	IPv6 bool
	// ClientIPv6 gives the client (not behind a NAT) an IPv6 address on the hub (ClientAddr6) and a
	// default IPv6 route there, so that IPv6 that escaped its tunnel would show on its outer interface.
	ClientIPv6 bool
	// NoKillSwitch starts the client with kill_switch = false: what its routes and engine keep in the
	// tunnel is then all that does.
	NoKillSwitch bool
	// DirectWeb joins the web network to the hub and gives the client (not behind a NAT) a default
	// route there: the internet it would reach without the VPN, which split tunnelling sends some
	// traffic to around the tunnel.
	DirectWeb bool
	// ExitPolicy gives exits, by name, a policy of their own instead of the default (exit.policy:
	// rules one per line).
	ExitPolicy map[string]string
	// NoDetour starts the client with detour = false: a refused flow fails at once.
	NoDetour bool
	// Exclude and Include are the client's split tunnelling ranges (exclude, include), ExcludeDomains
	// its names (exclude_domains).
	Exclude, Include, ExcludeDomains []string
	// FirstDay runs the authorities with the flag rules of their example.toml (stable_age 24 h,
	// min_guards 3): a network on its first day, as docs/operators.md builds it. Without it they
	// take every relay as Stable after a second.
	FirstDay bool
}

// started counts the testnets this process started: their prefixes differ, so that several can run
// at once (the tests run two in parallel).
var started atomic.Uint32

// clientStartLimit bounds a testnet client's start (its `up --timeout`, and the wait for it): longer
// than a user's 30 s, since a loaded CI machine (two shared cores, the race detector, other tests
// beside) can take that long to get a few processes through their first directory and circuit.
const clientStartLimit = 90 * time.Second

// Link timers of the testnet: a link that hears nothing for 2 s is dead (30 s on real networks), so
// that a killed relay shows quickly.
const (
	keepalive = 500 * time.Millisecond
	deadAfter = 2 * time.Second
)

// Start builds the network, starts every node and the client, and returns once the client has a
// circuit.
func Start(ctx context.Context, o Options) (n *Net, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testnet: needs root (network namespaces, TUN devices, nftables)")
	}
	if o.Relays == 0 {
		o.Relays = 5
	}
	if o.Exits == 0 {
		o.Exits = 2
	}
	if o.Exit == "" {
		o.Exit = "x1"
	}
	if o.Tamper != nil {
		if o.EntryGuard == "" {
			return nil, errors.New("testnet: a tamperer needs the client's guard (EntryGuard)")
		}
		nat := map[string]NATKind{"cl": HomeNAT}
		for k, v := range o.NAT {
			nat[k] = v
		}
		o.NAT = nat
	}
	if o.RatchetEvery == 0 {
		o.RatchetEvery = 5 * time.Second
	}
	if o.Backend == "" {
		o.Backend = tun.DefaultBackend
	}
	if o.Bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Bin = filepath.Dir(self)
	}
	for _, b := range []string{"meshvpn-exit-node", "meshvpn-client", "meshvpn-dht-bootstrap", "meshvpn-discovery"} {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return nil, fmt.Errorf("testnet: %s is not built (make build): %w", b, err)
		}
	}
	n = &Net{Prefix: fmt.Sprintf("mv%d%c", os.Getpid()%100000, 'a'+byte(started.Add(1)-1)%26), bin: o.Bin, ratchet: o.RatchetEvery, lifetime: o.CircuitLifetime, ipv6: o.IPv6, policies: o.ExitPolicy, firstDay: o.FirstDay}
	self := n // the deferred cleanup below must not see the nil that an error return puts in n
	if n.dir, err = os.MkdirTemp("", n.Prefix+"-testnet-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			self.Close()
		}
	}()
	hub, err := n.namespace("hub")
	if err != nil {
		return nil, err
	}
	for _, c := range [][]string{{"ip", "link", "add", "br0", "type", "bridge"}, {"ip", "link", "set", "br0", "up"},
		{"ip", "addr", "add", hubAddr6 + "/64", "dev", "br0", "nodad"}} {
		if _, err := hub.exec(c...); err != nil {
			return nil, err
		}
	}
	if n.wb, err = n.namespace("web"); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "wbr", "type", "bridge"},
		{"ip", "addr", "add", WebAddr + "/24", "dev", "wbr"},
		{"ip", "addr", "add", WebAddr2 + "/32", "dev", "wbr"},
		{"ip", "addr", "add", WebAddr6 + "/64", "dev", "wbr", "nodad"},
		{"ip", "link", "set", "wbr", "up"},
	} {
		if _, err := n.wb.exec(c...); err != nil {
			return nil, err
		}
	}
	if o.DirectWeb {
		if err := n.plug(n.wb, hub, "br0", "web", netip.MustParsePrefix(webHubAddr+"/24")); err != nil {
			return nil, err
		}
	}
	for i := range o.Relays + o.Exits {
		exit := i >= o.Relays
		name := fmt.Sprintf("r%d", i+1)
		addr := netip.AddrFrom4([4]byte{10, 240, 0, byte(11 + i)})
		if exit {
			name = fmt.Sprintf("x%d", i-o.Relays+1)
			addr = netip.AddrFrom4([4]byte{10, 240, 0, byte(21 + i - o.Relays)})
		}
		node, err := n.plugNode(hub, name, addr, exit, o.NAT[name])
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		n.Relays = append(n.Relays, node)
		if exit {
			n.Exits = append(n.Exits, node)
		}
	}
	if !o.RelayList {
		if err := n.startBootstrap(ctx, hub); err != nil {
			return nil, fmt.Errorf("dht bootstrap: %w", err)
		}
		if err := n.makeAuthorities(hub, 3); err != nil {
			return nil, fmt.Errorf("authorities: %w", err)
		}
		if err := n.writeGenesis(); err != nil {
			return nil, err
		}
		if err := n.startAuthorities(ctx); err != nil {
			return nil, fmt.Errorf("authorities: %w", err)
		}
	}
	// The exits ask the internet's resolver (exit/dns answers their clients' DNS with it).
	for _, x := range n.Exits {
		if err := writeResolvConf(x.ns, "nameserver "+ResolverAddr+"\n"); err != nil {
			return nil, err
		}
	}
	// The nodes start side by side; each is ready when its entry file appears.
	errc := make(chan error, len(n.Relays))
	for _, node := range n.Relays {
		go func() { errc <- n.startNode(ctx, node, o.Backend) }()
	}
	for range n.Relays {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	if n.Web, err = startWeb(n.wb); err != nil {
		return nil, err
	}
	if n.Resolver, err = startResolver(n.wb, o.IPv6); err != nil {
		return nil, err
	}
	if err := n.startClient(ctx, hub, o); err != nil {
		return nil, err
	}
	if n.tamperer != nil {
		n.tamperer.SetTampering(true)
	}
	return n, nil
}

func (n *Net) namespace(role string) (*namespace, error) {
	ns, err := newNamespace(n.Prefix + "-" + role)
	if err != nil {
		return nil, err
	}
	n.ns = append(n.ns, ns)
	return ns, nil
}

// plug joins ns to the bridge br in namespace into with a veth pair; the end in ns gets addr.
func (n *Net) plug(ns, into *namespace, br, tag string, addr netip.Prefix) error {
	inner, outer := "e"+tag, n.Prefix+tag
	if len(outer) > 15 {
		outer = outer[len(outer)-15:]
	}
	if _, err := sh("ip", "link", "add", inner, "netns", ns.name, "type", "veth", "peer", "name", outer, "netns", into.name); err != nil {
		return err
	}
	if _, err := into.exec("ip", "link", "set", outer, "master", br, "up"); err != nil {
		return err
	}
	if _, err := ns.exec("ip", "addr", "add", addr.String(), "dev", inner); err != nil {
		return err
	}
	_, err := ns.exec("ip", "link", "set", inner, "up")
	return err
}

// plugNode makes a node's namespace and wires it: to the hub, and an exit to the web network too;
// behind a NAT, its router is wired there instead.
func (n *Net) plugNode(hub *namespace, name string, addr netip.Addr, exit bool, nat NATKind) (*Node, error) {
	ns, err := n.namespace(name)
	if err != nil {
		return nil, err
	}
	var webSide netip.Addr
	if exit {
		exits := 0
		for _, r := range n.Relays {
			if r.Exit {
				exits++
			}
		}
		webSide = netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + exits)})
	}
	node := &Node{Name: name, Addr: addr, Listen: addr, NAT: nat, Exit: exit, ns: ns, dir: filepath.Join(n.dir, name)}
	if nat != "" {
		if node.Listen, err = n.behindNAT(hub, ns, name, addr, webSide, nat); err != nil {
			return nil, err
		}
		return node, nil
	}
	if err := n.plug(ns, hub, "br0", name, netip.PrefixFrom(addr, 24)); err != nil {
		return nil, err
	}
	if exit {
		if err := n.plug(ns, n.wb, "wbr", "w"+name, netip.PrefixFrom(webSide, 24)); err != nil {
			return nil, err
		}
		// The exit's way to the internet: everything beyond the web network goes there too.
		if _, err := ns.exec("ip", "route", "add", "default", "via", WebAddr); err != nil {
			return nil, err
		}
		web6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x13, 15: webSide.As4()[3]})
		for _, c := range [][]string{
			{"ip", "addr", "add", netip.PrefixFrom(web6, 64).String(), "dev", "ew" + name, "nodad"},
			{"ip", "-6", "route", "add", "default", "via", WebAddr6},
		} {
			if _, err := ns.exec(c...); err != nil {
				return nil, err
			}
		}
	}
	return node, nil
}

// startNode writes the node's config and runs meshvpn-exit-node with it, waiting for its entry.
func (n *Net) startNode(ctx context.Context, node *Node, backend tun.Backend) error {
	if err := os.MkdirAll(node.dir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`name = %q
data_dir = %q
listen = "%s:%d"
relay_only = %v
metrics = %q
log_level = "info"
[link]
keepalive_interval = %q
dead_after = %q
[exit]
tun = "mvx0"
tun_backend = %q
`, node.Name, filepath.Join(node.dir, "data"), node.Listen, relayPort, !node.Exit, metricsAddr, keepalive, deadAfter, backend)
	if n.ipv6 {
		cfg += fmt.Sprintf("pool6 = %q\n", ExitPool6)
	}
	if p, ok := n.policies[node.Name]; ok {
		cfg += fmt.Sprintf("policy = %q\n", p)
	}
	if n.ratchet > 0 {
		cfg = fmt.Sprintf("ratchet_every = %q\n", n.ratchet) + cfg
	}
	if n.GenesisFile != "" {
		cfg = fmt.Sprintf("genesis = %q\ndht_listen = \"%s:%d\"\npublish_interval = \"10s\"\n", n.GenesisFile, node.Listen, nodeDHTPort) + cfg
	}
	path := filepath.Join(node.dir, "exit-node.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	p, err := n.run(node.ns, node.Name, filepath.Join(n.bin, "meshvpn-exit-node"), "--config", path)
	if err != nil {
		return err
	}
	node.proc = p
	entry := filepath.Join(node.dir, "data", exitnode.EntryFile)
	if err := p.waitFor(ctx, 15*time.Second, func() bool { _, err := os.Stat(entry); return err == nil }); err != nil {
		return err
	}
	text, err := os.ReadFile(entry)
	if err != nil {
		return err
	}
	es, err := relaylist.Parse(text)
	if err != nil {
		return err
	}
	node.Entry = es[0]
	return nil
}

func (n *Net) startClient(ctx context.Context, hub *namespace, o Options) error {
	cl, err := n.namespace("cl")
	if err != nil {
		return err
	}
	n.cl = cl
	if kind := o.NAT["cl"]; kind != "" {
		if _, err := n.behindNAT(hub, cl, "cl", netip.MustParseAddr(ClientAddr), netip.Addr{}, kind); err != nil {
			return err
		}
		if o.Tamper != nil {
			guard := n.Node(o.EntryGuard)
			if guard == nil {
				return fmt.Errorf("no relay %s", o.EntryGuard)
			}
			if err := n.startTamperer(n.ns[len(n.ns)-1], guard, *o.Tamper); err != nil { // the router behindNAT made
				return err
			}
		}
	} else if err := n.plug(cl, hub, "br0", "cl", netip.MustParsePrefix(ClientAddr+"/24")); err != nil {
		return err
	} else if o.DirectWeb {
		if _, err := cl.exec("ip", "route", "add", "default", "via", webHubAddr); err != nil {
			return err
		}
	}
	if o.ClientIPv6 && o.NAT["cl"] == "" {
		for _, c := range [][]string{
			{"ip", "addr", "add", ClientAddr6 + "/64", "dev", "ecl", "nodad"},
			{"ip", "-6", "route", "add", "default", "via", hubAddr6},
		} {
			if _, err := cl.exec(c...); err != nil {
				return err
			}
		}
	}
	dir := filepath.Join(n.dir, "client")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var source string
	if o.RelayList {
		var entries []netdir.Relay
		for _, node := range n.Relays {
			entries = append(entries, node.Entry)
		}
		list, err := relaylist.Encode(entries)
		if err != nil {
			return err
		}
		relays := filepath.Join(dir, "relays.toml")
		if err := os.WriteFile(relays, list, 0o644); err != nil {
			return err
		}
		source = fmt.Sprintf("relays = %q\nexit = %q\nstate_dir = %q\n", relays, o.Exit, filepath.Join(dir, "state"))
	} else {
		if n.Consensus, err = n.awaitConsensus(ctx, n.cl, 60*time.Second); err != nil {
			return err
		}
		exit := n.Node(o.Exit)
		if exit == nil {
			return fmt.Errorf("no exit %s", o.Exit)
		}
		source = fmt.Sprintf("genesis = %q\nstate_dir = %q\nexit = %q\nexit_port = 80\nallow_same_subnet = true\ndirectory_refresh = \"2s\"\n",
			n.GenesisFile, filepath.Join(dir, "state"), exit.Entry.Identity.String())
		if o.EntryGuard != "" {
			guard := n.Node(o.EntryGuard)
			if guard == nil {
				return fmt.Errorf("no relay %s", o.EntryGuard)
			}
			source += fmt.Sprintf("entry_guards = [%q]\n", guard.Entry.Identity.String())
		}
	}
	n.Socket = filepath.Join(dir, "client.sock")
	if n.ratchet > 0 {
		source += fmt.Sprintf("ratchet_every = %q\n", n.ratchet)
	}
	if n.lifetime > 0 {
		source += fmt.Sprintf("max_circuit_lifetime = %q\n", n.lifetime)
	}
	if o.NoKillSwitch {
		source += "kill_switch = false\n"
	}
	if o.NoDetour {
		source += "detour = false\n"
	}
	// A split group of this run's own: the cgroup hierarchy is the machine's, shared by every run.
	source += fmt.Sprintf("exclude_cgroup = %q\n", n.excludeGroup())
	for key, list := range map[string][]string{"exclude": o.Exclude, "include": o.Include, "exclude_domains": o.ExcludeDomains} {
		if len(list) > 0 {
			source += fmt.Sprintf("%s = [\"%s\"]\n", key, strings.Join(list, `", "`))
		}
	}
	cfg := source + fmt.Sprintf(`control_socket = %q
metrics = %q
log_level = "info"
[tun]
name = "mvc0"
backend = %q
address = "%s/32"
[link]
keepalive_interval = %q
dead_after = %q
`, n.Socket, clientMetricsAddr, o.Backend, ClientTUNAddr, keepalive, deadAfter)
	path := filepath.Join(dir, "client.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	// The client points DNS at the tunnel: at the namespace's own resolv.conf, never the host's.
	if err := writeResolvConf(cl, clientResolvConf); err != nil {
		return err
	}
	if err := checkResolvConf(cl, clientResolvConf); err != nil {
		return err
	}
	if n.client, err = n.run(cl, "client", filepath.Join(n.bin, "meshvpn-client"), "up", "--foreground", "--timeout", clientStartLimit.String(), "--config", path); err != nil {
		return err
	}
	ctl := clientd.Dial(n.Socket)
	defer ctl.Close()
	return n.client.waitFor(ctx, clientStartLimit, func() bool {
		s, err := ctl.Status(ctx)
		return err == nil && s.State == "connected"
	})
}

// Status asks the client daemon for its status.
func (n *Net) Status(ctx context.Context) (clientd.Status, error) {
	ctl := clientd.Dial(n.Socket)
	defer ctl.Close()
	return ctl.Status(ctx)
}

// Node returns the node with the given name, or nil.
func (n *Net) Node(name string) *Node {
	for _, node := range n.Relays {
		if node.Name == name {
			return node
		}
	}
	return nil
}

func (n *Net) byIdentity(id string) *Node {
	for _, node := range n.Relays {
		if node.Entry.Identity.String() == id {
			return node
		}
	}
	return nil
}

// NameOf returns the testnet name (r1, x2, …) of the relay a client status names by identity prefix
// or by name.
func (n *Net) NameOf(s string) string {
	for _, node := range n.Relays {
		if node.Name == s || strings.HasPrefix(node.Entry.Identity.String(), s) {
			return node.Name
		}
	}
	return s
}

// Path returns the client's circuit, guard first.
func (n *Net) Path(ctx context.Context) ([]*Node, error) {
	s, err := n.Status(ctx)
	if err != nil {
		return nil, err
	}
	var path []*Node
	for _, h := range s.Circuit.Hops {
		node := n.byIdentity(h.Identity)
		if node == nil {
			return nil, fmt.Errorf("the client uses %q, which is not in the testnet", h.Name)
		}
		path = append(path, node)
	}
	return path, nil
}

// Kill ends a node's process at once with SIGKILL, as a crash would: nobody is told.
func (n *Net) Kill(node *Node) error { return node.proc.kill() }

// services returns the processes that are not relays: the client, the authorities, the bootstrap node.
func (n *Net) services() []*process {
	var ps []*process
	if n.client != nil {
		ps = append(ps, n.client)
	}
	for _, a := range n.Authorities {
		if a.proc != nil {
			ps = append(ps, a.proc)
		}
	}
	ps = append(ps, n.boot...)
	return ps
}

// PIDs returns the process ids of every MeshVPN process of the testnet, the client's included.
func (n *Net) PIDs() []int {
	var pids []int
	for _, node := range n.Relays {
		if node.proc != nil && !node.proc.exited() {
			pids = append(pids, node.proc.cmd.Process.Pid)
		}
	}
	for _, p := range n.services() {
		if !p.exited() {
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}

// InClient runs a command in the client's namespace (curl, ping, iperf3 …).
func (n *Net) InClient(args ...string) (string, error) { return n.cl.exec(args...) }

// InNode runs a command in a node's namespace.
func (n *Net) InNode(node *Node, args ...string) (string, error) { return node.ns.exec(args...) }

// Namespace returns the name of a node's namespace.
func (node *Node) Namespace() string { return node.ns.name }

// InWeb runs a command in the web server's namespace.
func (n *Net) InWeb(args ...string) (string, error) { return n.wb.exec(args...) }

// Log returns what a node (by name, or "client") wrote to its log so far.
func (n *Net) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, name+".log"))
	return string(b)
}

// Close stops the client (gracefully: it removes its routes and TUN), then every node, then removes
// every namespace and this run's files.
func (n *Net) Close() {
	if n.client != nil {
		n.client.stop(5 * time.Second)
	}
	for _, node := range n.Relays {
		if node.proc != nil {
			node.proc.stop(5 * time.Second)
		}
	}
	for _, p := range n.services() {
		p.stop(5 * time.Second)
	}
	if n.Web != nil {
		n.Web.Close()
	}
	if n.Resolver != nil {
		n.Resolver.Close()
	}
	if n.tamperer != nil {
		n.tamperer.Close()
	}
	for _, ns := range n.ns {
		ns.remove()
	}
	n.ns = nil
	if dir, err := clientd.ExcludeGroup(clientd.Config{ExcludeCgroup: n.excludeGroup()}); err == nil {
		os.Remove(dir) // the client's own Close removes it; after a kill -9, this does
	}
	if n.dir != "" && !n.keep {
		os.RemoveAll(n.dir)
	}
}

// KeepFiles makes Close leave this run's configs, data directories and logs in place (after a
// failure, for a person to read), and returns their folder.
func (n *Net) KeepFiles() string {
	n.keep = true
	return n.dir
}

// Leftovers lists namespaces with this run's prefix that still exist (none after Close).
func (n *Net) Leftovers() []string {
	out, _ := sh("ip", "netns", "list")
	var left []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, n.Prefix+"-") {
			left = append(left, strings.Fields(line)[0])
		}
	}
	return left
}

// process is one program the testnet started in a namespace, its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

func (n *Net) run(ns *namespace, name, bin string, args ...string) (*process, error) {
	// A restarted process appends to its log: what it wrote before it died stays there.
	logf, err := os.OpenFile(filepath.Join(n.dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// ip netns exec execs the program: the PID is the node's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls ok until it holds, the process dies (an error with its log), or the time is up.
func (p *process) waitFor(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.After(limit)
	for !ok() {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log.Name())
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, strings.TrimSpace(string(b)))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			b, _ := os.ReadFile(p.log.Name())
			return fmt.Errorf("%s not ready after %v: %s", p.name, limit, strings.TrimSpace(string(b)))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (p *process) kill() error {
	if p.exited() {
		return nil
	}
	err := p.cmd.Process.Kill()
	<-p.done
	return err
}

// stop asks the process to end (SIGTERM, a graceful shutdown) and kills it if it has not after wait.
func (p *process) stop(wait time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		p.kill()
	}
}

// Stop ends a node's process gracefully (SIGTERM), as an operator's shutdown would.
func (n *Net) Stop(node *Node) { node.proc.stop(5 * time.Second) }

// StopClient ends the client daemon gracefully and reports how it exited.
func (n *Net) StopClient() error {
	n.client.stop(5 * time.Second)
	return n.client.err
}

// ClientExited is closed when the client daemon has exited.
func (n *Net) ClientExited() <-chan struct{} { return n.client.done }

// Bin returns the path of one of the MeshVPN programs the testnet runs.
func (n *Net) Bin(name string) string { return filepath.Join(n.bin, name) }
