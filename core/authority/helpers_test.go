package authority

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
	"github.com/meshvpn/meshvpn/network/link"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test timings: a round a second, and DHT items that expire quickly (so that a relay can be made to
// reuse a seq, which the DHT itself refuses while the old item lives).
const (
	testPeriod       = time.Second
	testItemLifetime = 2 * time.Second
	testQueryTimeout = 250 * time.Millisecond
	republishEvery   = 250 * time.Millisecond
)

func testLogger(t testing.TB) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

func loopbackUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testDHTTuning(c *dht.Config) {
	c.ItemLifetime, c.QueryTimeout = testItemLifetime, testQueryTimeout
}

// startDHTNode starts a bootstrapped DHT node on loopback, closed when the test ends.
func startDHTNode(t testing.TB, bootstrap []netip.AddrPort) *dht.Node {
	t.Helper()
	cfg := dht.Config{Conn: loopbackUDP(t), Bootstrap: bootstrap, First: len(bootstrap) == 0, Logger: testLogger(t)}
	testDHTTuning(&cfg)
	n, err := dht.New(cfg)
	if err != nil {
		cfg.Conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// testNet is a small DHT on loopback, the relays on it, and the genesis file of their network.
type testNet struct {
	t         *testing.T
	networkID [32]byte
	boot      []netip.AddrPort
	dhtNodes  []*dht.Node
	relays    []*testRelay
	dir       string
}

func newTestNet(t *testing.T) *testNet {
	n := &testNet{t: t, dir: t.TempDir()}
	var err error
	if n.networkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	first := startDHTNode(t, nil)
	n.boot = []netip.AddrPort{first.Addr()}
	n.dhtNodes = []*dht.Node{first, startDHTNode(t, n.boot), startDHTNode(t, n.boot)}
	return n
}

// genesis is the network's genesis naming the authorities (in the order given), with URL paths /a0,
// /a1, ….
func (n *testNet) genesis(threshold int, auths ...keys.IdentityPublic) *genesis.Genesis {
	g := &genesis.Genesis{Name: "test", NetworkID: n.networkID, Threshold: threshold, Bootstrap: n.boot}
	for i, id := range auths {
		g.Authorities = append(g.Authorities, genesis.Authority{Identity: id, URL: fmt.Sprintf("http://127.0.0.1/a%d", i)})
	}
	return g
}

// defaultConfig is the daemon's default configuration (cmd/internal/discovery/example.toml) without
// genesis, identity and data directory.
func defaultConfig() Config {
	return Config{
		Period:     10 * time.Minute,
		DHTListen:  netip.MustParseAddrPort("0.0.0.0:6881"),
		HTTPListen: netip.MustParseAddrPort("0.0.0.0:8080"),
		Crawl:      CrawlConfig{Concurrency: 32, WhoisTimeout: 3 * time.Second, FetchTimeout: 20 * time.Second},
		Probe: ProbeConfig{
			Source: netip.IPv4Unspecified(), Timeout: 10 * time.Second, Concurrency: 8, Burst: 64, BurstSize: 1200,
			History: 144, KeepaliveInterval: 10 * time.Second, DeadAfter: 30 * time.Second,
		},
		Rules: Rules{
			StableAge: 24 * time.Hour, StableRatio: 0.9, FastFraction: 0.125,
			LatencyFactor: 3, LatencyFloor: 10 * time.Millisecond, DropFailures: 3, DropMissed: 3,
		},
	}
}

// authorityConfig is a configuration for a test authority on loopback with short timings.
func (n *testNet) authorityConfig(g *genesis.Genesis, id *keys.Identity, dataDir string) Config {
	cfg := defaultConfig()
	cfg.Genesis, cfg.Identity, cfg.DataDir = g, id, dataDir
	cfg.Period = testPeriod
	loopback := netip.MustParseAddrPort("127.0.0.1:0")
	cfg.DHTListen, cfg.HTTPListen, cfg.Probe.Source = loopback, loopback, loopback.Addr()
	cfg.Crawl.WhoisTimeout, cfg.Crawl.FetchTimeout = 300*time.Millisecond, 2*time.Second
	// Generous for loopback: a loaded test machine must not fail healthy relays' probes.
	cfg.Probe.Timeout = time.Second
	// Stable soon, and despite a probe lost to a loaded machine (the ratio has its unit test).
	cfg.Rules.StableAge, cfg.Rules.StableRatio = 3*time.Second, 0.5
	cfg.dhtTuning = testDHTTuning
	return cfg
}

// testRelay is a relay on loopback that answers whois, with a DHT node of its own on which it keeps
// publishing its descriptor and announcing its link port.
type testRelay struct {
	t        *testing.T
	net      *testNet
	id       *keys.Identity
	link     *keys.Static
	onion    *keys.Static
	relay    *relay.Relay
	node     *dht.Node
	addr     netip.AddrPort
	desc     descriptor.Descriptor
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	raw     []byte // what is published; nil: nothing (announces go on)
	seq     uint64
	publish error // the last publication's outcome
}

// addRelay starts a relay; exit gives it an exit summary. It publishes its descriptor (seq 1), or
// what publish makes of it if publish is not nil.
func (n *testNet) addRelay(exit bool, publish func(r *testRelay) []byte) *testRelay {
	t := n.t
	t.Helper()
	r := &testRelay{t: t, net: n, stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if r.id, err = keys.GenerateIdentity(rand.Reader); err != nil {
		t.Fatal(err)
	}
	r.link, _ = keys.GenerateStatic(rand.Reader)
	r.onion, _ = keys.GenerateStatic(rand.Reader)
	conn := loopbackUDP(t)
	node, err := link.New(link.Config{Conn: conn, Static: r.link, Logger: testLogger(t)})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	r.relay, err = relay.New(relay.Config{
		Node: node, Identity: r.id, OnionKeys: []*keys.Static{r.onion},
		NetworkID: n.networkID, Logger: testLogger(t),
	})
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		r.relay.Close()
		t.Fatal(err)
	}
	r.addr = r.relay.Info().Addr
	r.node = startDHTNode(t, n.boot)
	now := time.Unix(time.Now().Unix(), 0)
	r.desc = descriptor.Descriptor{
		NetworkID: n.networkID, OnionKey: r.onion.Public(), LinkKey: r.link.Public(),
		ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(7 * 24 * time.Hour),
		Addresses: []netip.AddrPort{r.addr}, Bandwidth: 1 << 20, Software: "test", Published: now, Seq: 1,
	}
	if exit {
		r.desc.Exit = exitports.Summary{TCP: []exitports.Range{{Lo: 80, Hi: 80}, {Lo: 443, Hi: 443}}}
	}
	if publish == nil {
		publish = func(r *testRelay) []byte { return r.sign(r.desc) }
	}
	r.setDescriptor(publish(r), r.desc.Seq)
	n.relays = append(n.relays, r)
	go r.keepPublishing()
	t.Cleanup(r.close)
	return r
}

func (r *testRelay) sign(d descriptor.Descriptor) []byte {
	raw, err := d.Sign(r.id)
	if err != nil {
		r.t.Fatal(err)
	}
	return raw
}

// setDescriptor makes raw, with BEP 44 seq seq, what the relay publishes (nil: nothing).
func (r *testRelay) setDescriptor(raw []byte, seq uint64) {
	r.mu.Lock()
	r.raw, r.seq, r.publish = raw, seq, errors.New("not published yet")
	r.mu.Unlock()
}

// published reports the last publication's outcome.
func (r *testRelay) published() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publish
}

func (r *testRelay) keepPublishing() {
	defer close(r.done)
	ih := dht.NetworkInfohash(r.net.networkID)
	key := ed25519.NewKeyFromSeed(r.id.Seed())
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.mu.Lock()
		raw, seq := r.raw, r.seq
		r.mu.Unlock()
		if raw != nil {
			err := r.node.Publish(ctx, key, descriptor.Salt(r.net.networkID), int64(seq), raw)
			r.mu.Lock()
			r.publish = err
			r.mu.Unlock()
		}
		_ = r.node.Announce(ctx, ih, int(r.addr.Port()))
		cancel()
		select {
		case <-r.stop:
			return
		case <-time.After(republishEvery):
		}
	}
}

// close stops the relay: its publisher, its DHT node and its relay engine. What it announced stays
// in the others' peer stores, as after a crash.
func (r *testRelay) close() {
	r.stopOnce.Do(func() {
		r.relay.Close()
		close(r.stop)
		<-r.done
		r.node.Close()
	})
}

func (r *testRelay) digest() [32]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return descriptor.Digest(r.raw)
}

// waitFor polls cond every 50 ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet fetches url and returns the status and body.
func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// base is the URL under which a serves, as a client would form it from the genesis file.
func base(a *Authority) string { return "http://" + a.HTTPAddr().String() + a.prefix }

// document fetches and parses a's document with serial (0: the latest) over HTTP.
func document(t testing.TB, a *Authority, serial uint64) *directory.Directory {
	t.Helper()
	url := base(a) + directory.PathDirectory
	if serial != 0 {
		url += "/" + strconv.FormatUint(serial, 10)
	}
	status, b := httpGet(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, b)
	}
	d, err := directory.Parse(b)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return d
}

// entry returns the entry of id in d.
func entry(d *directory.Directory, id keys.IdentityPublic) (directory.Entry, bool) {
	for _, e := range d.Entries {
		if e.Identity == id {
			return e, true
		}
	}
	return directory.Entry{}, false
}

// latestSerial is the serial of a's latest document, 0 before the first.
func latestSerial(a *Authority) uint64 {
	if d, _ := a.Latest(); d != nil {
		return d.Serial
	}
	return 0
}
