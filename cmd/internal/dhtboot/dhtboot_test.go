package dhtboot

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/dht"
	"github.com/meshvpn/meshvpn/network/stun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExampleConfigIsTheDefault(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("the example configuration does not validate: %v", err)
	}
	if c.DataDir != "/var/lib/meshvpn-dht" || c.DHT.Listen != "0.0.0.0:6881" || len(c.DHT.Bootstrap) != 0 ||
		c.STUN.Listen != "0.0.0.0:3478" || c.STUN.Rate != stun.DefaultRate || c.Metrics != "127.0.0.1:9330" ||
		c.PublicIP != "" || c.LogLevel != daemon.DefaultLogLevel {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	err := daemon.DecodeConfig("test", []byte(`
data_dir = "relative"
public_ip = "0.0.0.0"
metrics = "0.0.0.0:9312"
log_level = "loud"
[dht]
listen = "nonsense"
bootstrap = ["198.51.100.2:6881", "198.51.100.2:6881", "router.bittorrent.com:6881", "198.51.100.3:0"]
[stun]
listen = "127.0.0.1"
rate = 0
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("a broken configuration validated")
	}
	for _, want := range []string{"data_dir", "public_ip", "metrics address", "log level", "dht.listen",
		"dht.bootstrap[1] 198.51.100.2:6881: listed twice", "dht.bootstrap[2]", "dht.bootstrap[3]", "stun.listen", "stun.rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	t.Logf("every problem:\n%v", err)

	c = DefaultConfig()
	c.STUN.Listen = c.DHT.Listen
	c.PublicIP = "2001:db8::1"
	c.DHT.Bootstrap = []string{"[2001:db8::2]:6881"}
	err = c.Validate()
	for _, want := range []string{"the same as dht.listen", "public_ip 2001:db8::1: not of dht.listen's address family", "dht.bootstrap[0] [2001:db8::2]:6881: not of dht.listen's"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}

	if err := daemon.DecodeConfig("test", []byte("[dht]\nbootstarp = []\n[stun]\nlisten = \"\"\nrat = 1\n"), &c); err == nil ||
		!strings.Contains(err.Error(), "dht.bootstarp") || !strings.Contains(err.Error(), "stun.rat") {
		t.Fatalf("misspelt keys: %v", err)
	}
}

// TestConfigAddresses checks what `info` prints: the genesis file lines, with public_ip for a
// wildcard host, and a clear refusal where the address is not known before start.
func TestConfigAddresses(t *testing.T) {
	c := DefaultConfig()
	if _, err := c.Addresses(); err == nil || !strings.Contains(err.Error(), "set public_ip") {
		t.Fatalf("a wildcard listen address without public_ip: %v", err)
	}
	c.PublicIP = "198.51.100.1"
	a, err := c.Addresses()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.GenesisLines(), "bootstrap 198.51.100.1:6881\nstun 198.51.100.1:3478\n"; got != want {
		t.Errorf("genesis lines %q, want %q", got, want)
	}
	c.PublicIP, c.DHT.Listen, c.STUN.Listen = "", "[2001:db8::1]:6881", ""
	if a, err = c.Addresses(); err != nil || a.GenesisLines() != "bootstrap [2001:db8::1]:6881\n" {
		t.Errorf("STUN off: %q, %v", a.GenesisLines(), err)
	}
	c.DHT.Listen = "127.0.0.1:0"
	if _, err := c.Addresses(); err == nil || !strings.Contains(err.Error(), "port 0") {
		t.Errorf("a port the kernel chooses at start: %v", err)
	}
}

// TestJoinersFindEachOther starts a bootstrap node on ports the kernel chooses, has five DHT nodes
// join through the address it reports, announce themselves, and find each other's announces.
func TestJoinersFindEachOther(t *testing.T) {
	boot := startBoot(t, testConfig(t), testLogger(t))
	a := boot.Addresses()
	if a.DHT.Port() == 0 || a.DHT != boot.DHT().Addr() || !a.STUN.IsValid() || a.STUN.Port() == 0 || a.STUN.Port() == a.DHT.Port() {
		t.Fatalf("addresses %+v (the DHT node is at %v)", a, boot.DHT().Addr())
	}
	if want := fmt.Sprintf("bootstrap %v\nstun %v\n", a.DHT, a.STUN); a.GenesisLines() != want {
		t.Errorf("genesis lines %q, want %q", a.GenesisLines(), want)
	}
	joiners := startJoiners(t, a.DHT, 5)
	ih := dht.NetworkInfohash([32]byte{7})
	want := announceAll(t, joiners, ih)
	for i, j := range joiners {
		if got := findAll(t, j, ih, want); !containsAll(got, want) {
			t.Errorf("joiner %d found %v, want %v", i, got, want)
		}
	}
	s := boot.DHT().Stats()
	if s.Nodes < len(joiners) || s.QueriesIn == 0 || s.AnnouncesIn == 0 || s.PeersStored == 0 {
		t.Errorf("the bootstrap node's stats: %+v", s)
	}
	body := scrape(t, boot)
	for _, w := range []string{
		fmt.Sprintf(`meshvpn_dht_table_nodes{state="all"} %d`, s.Nodes),
		`meshvpn_dht_queries_total{direction="in"}`, `meshvpn_dht_announces_total{direction="in"}`,
		`meshvpn_dht_peers_stored`, `meshvpn_dht_items_stored 0`, `meshvpn_stun_requests_total{result="answered"} 0`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// TestSTUNAnswersWithTheAskersAddress asks the node's STUN server from a socket of our own: the answer
// names that socket's address; a datagram that is no Binding request is refused and counted.
func TestSTUNAnswersWithTheAskersAddress(t *testing.T) {
	boot := startBoot(t, testConfig(t), testLogger(t))
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, id, err := stun.Request()
	if err != nil {
		t.Fatal(err)
	}
	server := net.UDPAddrFromAddrPort(boot.Addresses().STUN)
	if _, err := conn.WriteToUDP(req, server); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no STUN answer: %v", err)
	}
	got, err := stun.ParseResponse(buf[:n], id)
	if err != nil {
		t.Fatal(err)
	}
	if me := conn.LocalAddr().(*net.UDPAddr).AddrPort(); got != me {
		t.Errorf("STUN says we are %v, we are %v", got, me)
	}
	if _, err := conn.WriteToUDP([]byte("not stun"), server); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return boot.STUN().Stats().Refused == 1 }) {
		t.Fatalf("STUN stats %+v, want one refused", boot.STUN().Stats())
	}
	body := scrape(t, boot)
	for _, w := range []string{`meshvpn_stun_requests_total{result="answered"} 1`, `meshvpn_stun_requests_total{result="refused"} 1`, `meshvpn_stun_requests_total{result="limited"} 0`} {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

func TestSTUNOff(t *testing.T) {
	c := testConfig(t)
	c.STUN.Listen = ""
	boot := startBoot(t, c, testLogger(t))
	if boot.STUN() != nil || boot.Addresses().STUN.IsValid() || strings.Contains(boot.Addresses().GenesisLines(), "stun") {
		t.Fatalf("STUN is off, but the node has %+v", boot.Addresses())
	}
	if strings.Contains(scrape(t, boot), "meshvpn_stun_") {
		t.Error("a node without STUN exports STUN metrics")
	}
}

// TestRestartKeepsTheRoutingTable closes a bootstrap node that five nodes joined and starts it again
// from the same data directory, on its old address as a restarted daemon is: it knows the joiners at
// once, though its configuration names none and none of them has contacted it since, and a newcomer
// that knows only the restarted node finds their announces.
func TestRestartKeepsTheRoutingTable(t *testing.T) {
	c := testConfig(t)
	boot := startBoot(t, c, testLogger(t))
	joiners := startJoiners(t, boot.Addresses().DHT, 5)
	ih := dht.NetworkInfohash([32]byte{8})
	want := announceAll(t, joiners, ih)
	id, old := boot.DHT().ID(), boot.Addresses().DHT
	if err := boot.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(c.DataDir, NodesFile))
	if err != nil {
		t.Fatalf("no routing table on disk after Close: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", NodesFile, st.Mode().Perm())
	}

	c.DHT.Listen = old.String()
	boot = startBoot(t, c, testLogger(t))
	s := boot.DHT().Stats()
	if s.Nodes < len(joiners) {
		t.Fatalf("the restarted node knows %d nodes, want the %d joiners from its nodes file", s.Nodes, len(joiners))
	}
	if boot.DHT().ID() != id {
		t.Errorf("restarted with node id %x, want the saved %x", boot.DHT().ID(), id)
	}
	newcomer := startJoiners(t, boot.Addresses().DHT, 1)[0]
	if got := findAll(t, newcomer, ih, want); !containsAll(got, want) {
		t.Errorf("through the restarted node, the newcomer found %v, want %v", got, want)
	}
}

// TestGarbageNodesFile: a damaged nodes file costs the saved table, not the start. The node warns,
// serves as a first node, and writes a good file over the damaged one when it closes.
func TestGarbageNodesFile(t *testing.T) {
	c := testConfig(t)
	path := filepath.Join(c.DataDir, NodesFile)
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("\x00\x01 this is not a nodes file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	boot := startBoot(t, c, zap.New(zapcore.NewTee(core, testLogger(t).Core())))
	warned := logs.FilterMessage("ignoring nodes file").All()
	if len(warned) != 1 || !strings.Contains(fmt.Sprint(warned[0].ContextMap()), NodesFile) {
		t.Fatalf("want one warning naming the damaged file, got %v", logs.All())
	}
	startJoiners(t, boot.Addresses().DHT, 1)
	c.DHT.Listen = boot.Addresses().DHT.String() // restarted daemons come back where they were
	if err := boot.Close(); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(text), "# meshvpn dht nodes v1\n") {
		t.Fatalf("the nodes file after Close: %q, %v", text, err)
	}
	core, logs = observer.New(zap.WarnLevel)
	boot = startBoot(t, c, zap.New(zapcore.NewTee(core, testLogger(t).Core())))
	if logs.Len() != 0 || boot.DHT().Stats().Nodes != 1 {
		t.Fatalf("restart from the rewritten file: %d nodes, warnings %v", boot.DHT().Stats().Nodes, logs.All())
	}
}

// testConfig is the default configuration on loopback ports the kernel chooses, in a fresh data
// directory.
func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.DataDir = filepath.Join(t.TempDir(), "data")
	c.DHT.Listen, c.STUN.Listen, c.Metrics = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return c
}

// testLogger shows warnings and errors of a failing test.
func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

func startBoot(t *testing.T, c Config, log *zap.Logger) *Node {
	t.Helper()
	n, err := Start(c, log)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// loopbackConn is a socket on 127.0.0.1 that fails the test if its node ever sends elsewhere (the
// testbed's rule: no DHT node in a test contacts anything but local nodes).
type loopbackConn struct {
	net.PacketConn
	t *testing.T
}

func (c loopbackConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !ua.AddrPort().Addr().Unmap().IsLoopback() {
		c.t.Errorf("a DHT node sent a datagram to %v, which is not loopback", addr)
		return 0, fmt.Errorf("the test forbids sending to %v", addr)
	}
	return c.PacketConn.WriteTo(b, addr)
}

// startJoiners starts k DHT nodes that know only boot, and bootstraps them concurrently. They are
// closed when the test ends.
func startJoiners(t *testing.T, boot netip.AddrPort, k int) []*dht.Node {
	t.Helper()
	nodes := make([]*dht.Node, k)
	for i := range nodes {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := dht.New(dht.Config{
			Conn: loopbackConn{PacketConn: pc, t: t}, Bootstrap: []netip.AddrPort{boot},
			QueryTimeout: 500 * time.Millisecond, Logger: testLogger(t),
		})
		if err != nil {
			pc.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[i] = n
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.Bootstrap(testContext(t)); err != nil {
				t.Errorf("joiner %d Bootstrap: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// announceAll has every node announce itself under ih at a port of its own, and returns the peers
// announced.
func announceAll(t *testing.T, nodes []*dht.Node, ih dht.Infohash) []netip.AddrPort {
	t.Helper()
	want := make([]netip.AddrPort, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		want[i] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i))
		wg.Go(func() {
			if err := n.Announce(testContext(t), ih, int(want[i].Port())); err != nil {
				t.Errorf("node %d Announce: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return want
}

// findAll looks up ih from n until every peer in want is found or a few seconds pass (the library
// stores announces on a goroutine of its own, so the first lookup may be early).
func findAll(t *testing.T, n *dht.Node, ih dht.Infohash, want []netip.AddrPort) []netip.AddrPort {
	t.Helper()
	var got []netip.AddrPort
	waitFor(5*time.Second, func() bool {
		var err error
		if got, err = n.FindPeers(testContext(t), ih); err != nil {
			t.Fatalf("FindPeers: %v", err)
		}
		return containsAll(got, want)
	})
	return got
}

func containsAll(got, want []netip.AddrPort) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func scrape(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// testContext bounds one operation of a test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestOperatorsGuideShowsTheExample keeps the configuration in docs/operators.md the real one.
func TestOperatorsGuideShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/operators.md")
	if err != nil {
		t.Skipf("no operator's guide beside the module: %v", err)
	}
	if !strings.Contains(string(doc), "```toml\n"+ExampleConfig+"```\n") {
		t.Error("docs/operators.md does not show example.toml as it is; paste `meshvpn-dht-bootstrap example-config` into it")
	}
}
