// Package testnet builds a whole MeshVPN network on one machine, each node in a network namespace of
// its own, joined by veth pairs and bridges, with real TUN devices, kernel routing and kernel NAT:
//
//	hub   a bridge all relays, exits and the client hang on (10.240.0.0/24, "the internet")
//	r1…r5 relays                      x1, x2 exits (also on the web network, with masquerade)
//	cl    the client: TUN mvc0, default route into it; only the hub is reachable outside the tunnel
//	web   an HTTP server and iperf3 at 203.0.113.10, reachable only through an exit
//
// The nodes run in this process, each with its sockets and devices made inside its namespace; the
// packets between them cross real interfaces. Every namespace is named with a per-run prefix and
// removed by Close, also after a failure.
package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/engine"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/exit/masq"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/session"
	"github.com/meshvpn/meshvpn/network/tun"
)

const (
	// WebAddr is the web server's address: on the web network, which only exits reach.
	WebAddr = "203.0.113.10"
	// ClientTUNAddr is the client's address inside the tunnel.
	ClientTUNAddr = "10.99.0.2"
	relayPort     = 7000
)

// TUNMTU is the client's TUN MTU: a full cell's payload at the third hop less the relay message
// header (docs/protocol.md §4).
var TUNMTU = cell.MaxData(onion.PayloadLen(onion.FullSize, 3))

// Node is one relay or exit of the testnet.
type Node struct {
	Name  string
	Addr  netip.Addr // on the hub
	Relay *relay.Relay
	Exit  *session.Engine // nil for a relay
	ns    *namespace
	conn  *net.UDPConn
}

// Net is a running testnet.
type Net struct {
	Prefix  string
	Relays  []*Node // relays then exits
	Exits   []*Node
	Client  *client.Client
	Engine  *engine.Engine
	Circuit *client.Circuit
	Web     *WebServer

	ns []*namespace
	cl *namespace
	wb *namespace

	mu      sync.Mutex
	token   [cell.TokenLen]byte
	path    []int
	reroute []Reroute

	stop     chan struct{} // closed by Close: ends KeepUp
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Reroute records one automatic rebuild after a circuit died.
type Reroute struct {
	Died, Rebuilt time.Time
	Why           error
	Path          []int
	SameSession   bool
}

// Options size the testnet.
type Options struct {
	Relays, Exits int
	Backend       tun.Backend
}

// linkTuning makes dead relays show quickly on the testnet: a link that hears nothing for 2 s is dead
// (the default is 30 s, for real networks).
var linkTuning = relay.LinkTuning{KeepaliveInterval: 500 * time.Millisecond, DeadAfter: 2 * time.Second, HandshakeRetry: 250 * time.Millisecond}

// Start builds the network and a circuit guard → middle → exit through it.
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
	n = &Net{Prefix: fmt.Sprintf("mv%d", os.Getpid()%100000), stop: make(chan struct{})}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	hub, err := n.namespace("hub")
	if err != nil {
		return nil, err
	}
	if _, err := hub.exec("ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return nil, err
	}
	if _, err := hub.exec("ip", "link", "set", "br0", "up"); err != nil {
		return nil, err
	}
	if n.wb, err = n.namespace("web"); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "wbr", "type", "bridge"},
		{"ip", "addr", "add", WebAddr + "/24", "dev", "wbr"},
		{"ip", "link", "set", "wbr", "up"},
	} {
		if _, err := n.wb.exec(c...); err != nil {
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
		node, err := n.startNode(hub, name, addr, exit, i, o)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		n.Relays = append(n.Relays, node)
		if exit {
			n.Exits = append(n.Exits, node)
		}
	}
	if n.Web, err = startWeb(n.wb); err != nil {
		return nil, err
	}
	if err := n.startClient(hub, o); err != nil {
		return nil, err
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
	cmds := [][]string{
		{"ip", "link", "add", inner, "netns", ns.name, "type", "veth", "peer", "name", outer, "netns", into.name},
	}
	for _, c := range cmds {
		if _, err := sh(c...); err != nil {
			return err
		}
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

func (n *Net) startNode(hub *namespace, name string, addr netip.Addr, exit bool, i int, o Options) (*Node, error) {
	ns, err := n.namespace(name)
	if err != nil {
		return nil, err
	}
	if err := n.plug(ns, hub, "br0", name, netip.PrefixFrom(addr, 24)); err != nil {
		return nil, err
	}
	node := &Node{Name: name, Addr: addr, ns: ns}
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		return nil, err
	}
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	var conn *net.UDPConn
	if err := ns.do(func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: addr.AsSlice(), Port: relayPort})
		return err
	}); err != nil {
		return nil, err
	}
	node.conn = conn
	cfg := relay.Config{Conn: conn, Identity: id, LinkKey: lk, OnionKeys: []*keys.Static{ok}, Link: linkTuning}
	if exit {
		webSide := netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + len(n.Exits))})
		if err := n.plug(ns, n.wb, "wbr", "w"+name, netip.PrefixFrom(webSide, 24)); err != nil {
			conn.Close()
			return nil, err
		}
		if node.Exit, err = startExit(ns, o.Backend); err != nil {
			conn.Close()
			return nil, err
		}
		e := node.Exit
		cfg.Exit = func(c *relay.ExitCircuit, t cell.MsgType, data []byte) { e.Handle(c, t, data) }
	}
	if node.Relay, err = relay.New(cfg); err != nil {
		conn.Close()
		if node.Exit != nil {
			node.Exit.Close()
		}
		return nil, err
	}
	return node, nil
}

// exitPool is every exit's session address pool; the exit's TUN takes its first address.
var exitPool = nat.DefaultPrefix

func startExit(ns *namespace, backend tun.Backend) (*session.Engine, error) {
	self := exitPool.Addr().Next()
	var dev tun.Device
	if err := ns.do(func() (err error) {
		dev, err = tun.Open(tun.Config{Name: "mvx0", MTU: 1500, Backend: backend, Addr: netip.PrefixFrom(self, exitPool.Bits()), Up: true})
		return err
	}); err != nil {
		return nil, fmt.Errorf("exit TUN: %w", err)
	}
	if _, err := ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		dev.Close()
		return nil, err
	}
	if _, err := masq.Install(exitPool, "mvx0", masq.Options{NetNSFd: int(ns.fd.Fd())}); err != nil {
		dev.Close()
		return nil, err
	}
	pool, err := nat.NewPool(exitPool, self)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return session.New(session.Config{TUN: dev, Pool: pool, Self: self})
}

func (n *Net) startClient(hub *namespace, o Options) error {
	cl, err := n.namespace("cl")
	if err != nil {
		return err
	}
	n.cl = cl
	if err := n.plug(cl, hub, "br0", "cl", netip.MustParsePrefix("10.240.0.100/24")); err != nil {
		return err
	}
	var conn *net.UDPConn
	var dev tun.Device
	if err := cl.do(func() (err error) {
		if conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 240, 0, 100)}); err != nil {
			return err
		}
		dev, err = tun.Open(tun.Config{Name: "mvc0", MTU: TUNMTU, Backend: o.Backend, Addr: netip.MustParsePrefix(ClientTUNAddr + "/32"), Up: true})
		return err
	}); err != nil {
		if conn != nil {
			conn.Close()
		}
		return fmt.Errorf("client: %w", err)
	}
	// Everything but the hub goes into the tunnel; the relays stay reachable on the hub's own route.
	if _, err := cl.exec("ip", "route", "add", "default", "dev", "mvc0"); err != nil {
		dev.Close()
		conn.Close()
		return err
	}
	if n.Engine, err = engine.New(dev, nil); err != nil {
		conn.Close()
		return err
	}
	e := n.Engine
	if n.Client, err = client.New(client.Config{Conn: conn, Link: linkTuning, OnData: func(_ *client.Circuit, d []byte) { e.Deliver(d) }}); err != nil {
		conn.Close()
		return err
	}
	return nil
}

// Build makes a circuit through the given relays (indexes into Relays, the last must be an exit),
// starts an exit session on it (re-attaching to the session token names, if any) and routes the
// client's packets through it.
func (n *Net) Build(ctx context.Context, token [cell.TokenLen]byte, idx ...int) ([cell.TokenLen]byte, error) {
	var path []relay.Info
	for _, i := range idx {
		path = append(path, n.Relays[i].Relay.Info())
	}
	c, err := n.Client.Build(ctx, path)
	if err != nil {
		return token, err
	}
	got, err := c.Begin(ctx, token)
	if err != nil {
		c.Close()
		return token, err
	}
	n.mu.Lock()
	old := n.Circuit
	n.Circuit, n.token, n.path = c, got, append([]int(nil), idx...)
	n.mu.Unlock()
	n.Engine.SetCircuit(c)
	if old != nil {
		old.Close()
	}
	return got, nil
}

// KeepUp watches the circuit and, when it dies, rebuilds one to the same exit through relays that are
// still answering (a new middle, and a new guard if the guard is the one that died), presenting the
// session token so the exit keeps the session and its TCP connections. It runs until Close.
func (n *Net) KeepUp() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			n.mu.Lock()
			c, path := n.Circuit, n.path
			n.mu.Unlock()
			if c == nil {
				return
			}
			select {
			case <-n.stop:
				return
			case <-c.Done():
			}
			died := time.Now()
			for attempt := 0; ; attempt++ {
				select {
				case <-n.stop:
					return
				default:
				}
				next := n.alternative(path, attempt)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				n.mu.Lock()
				token := n.token
				n.mu.Unlock()
				got, err := n.Build(ctx, token, next...)
				cancel()
				if err == nil {
					n.mu.Lock()
					n.reroute = append(n.reroute, Reroute{Died: died, Rebuilt: time.Now(), Why: c.Err(), Path: next, SameSession: got == token})
					n.mu.Unlock()
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
}

// alternative picks a new 3-hop path to the same exit: first the same guard with another middle (the
// middle is the likelier casualty), then other guards, in turn with each attempt.
func (n *Net) alternative(path []int, attempt int) []int {
	relays := len(n.Relays) - len(n.Exits)
	guard, middle, exit := path[0], path[1], path[len(path)-1]
	var candidates [][]int
	for _, g := range append([]int{guard}, others(relays, guard)...) {
		for m := range relays {
			if m != g && m != middle {
				candidates = append(candidates, []int{g, m, exit})
			}
		}
	}
	return candidates[attempt%len(candidates)]
}

func others(n, not int) []int {
	var out []int
	for i := range n {
		if i != not {
			out = append(out, i)
		}
	}
	return out
}

// Reroutes returns the automatic rebuilds so far.
func (n *Net) Reroutes() []Reroute {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Reroute(nil), n.reroute...)
}

// Kill makes relay i stop answering at once, as a crashed process would: its socket closes, nobody is
// told.
func (n *Net) Kill(i int) error { return n.Relays[i].conn.Close() }

// InClient runs a command in the client's namespace (curl, ping, iperf3 …).
func (n *Net) InClient(args ...string) (string, error) { return n.cl.exec(args...) }

// InNode runs a command in relay or exit i's namespace.
func (n *Net) InNode(i int, args ...string) (string, error) { return n.Relays[i].ns.exec(args...) }

// NodeNamespace returns the namespace name of relay or exit i.
func (n *Net) NodeNamespace(i int) string { return n.Relays[i].ns.name }

// InWeb runs a command in the web server's namespace.
func (n *Net) InWeb(args ...string) (string, error) { return n.wb.exec(args...) }

// Close stops every node and removes every namespace (their interfaces go with them).
func (n *Net) Close() {
	n.stopOnce.Do(func() { close(n.stop) })
	n.wg.Wait()
	if n.Client != nil {
		n.Client.Close()
	}
	if n.Engine != nil {
		n.Engine.Close()
	}
	for _, node := range n.Relays {
		node.Relay.Close()
		if node.Exit != nil {
			node.Exit.Close()
		}
	}
	if n.Web != nil {
		n.Web.Close()
	}
	for _, ns := range n.ns {
		ns.remove()
	}
	n.ns = nil
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
