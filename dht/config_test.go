package dht

import (
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
)

func TestConfigRejectsEmptyBootstrapWithoutFirst(t *testing.T) {
	pc := listenLoopback(t)
	defer pc.Close()
	_, err := New(Config{Conn: pc})
	if err == nil || !strings.Contains(err.Error(), "Bootstrap is empty") {
		t.Fatalf("New with no starting nodes and no First: err = %v, want a Bootstrap error", err)
	}
}

func TestConfigRequiresConn(t *testing.T) {
	// Without a Conn the library would listen on every interface by itself.
	_, err := New(Config{First: true})
	if err == nil || !strings.Contains(err.Error(), "Conn is required") {
		t.Fatalf("New without Conn: err = %v", err)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Bootstrap:    []netip.AddrPort{{}, netip.MustParseAddrPort("0.0.0.0:6881"), netip.MustParseAddrPort("127.0.0.1:0")},
		ItemLifetime: -time.Second,
		SendRate:     -1,
		MaxItems:     -1,
	}
	err := cfg.validate()
	if err == nil {
		t.Fatal("validate accepted a bad config")
	}
	for _, want := range []string{"Conn is required", "Bootstrap[0]", "Bootstrap[1]", "Bootstrap[2]", "ItemLifetime", "SendRate", "MaxItems"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate error does not mention %s:\n%v", want, err)
		}
	}
}

// TestServerConfigHasNoDangerousDefaults checks the config handed to the library, field by field,
// without a network: the library's defaults resolve public routers by DNS, share one 25 packets/s
// limiter across the process, drop announces (nil PeerStore) and expire items at once (zero Exp).
func TestServerConfigHasNoDangerousDefaults(t *testing.T) {
	boot := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7001"), netip.MustParseAddrPort("127.0.0.2:7002")}
	pc := listenLoopback(t)
	defer pc.Close()
	for _, cfg := range []Config{{Conn: pc, Bootstrap: boot}, {Conn: pc, First: true}} {
		cfg = cfg.withDefaults()
		peers := newPeerStore(cfg.Peers, time.Now)
		items := newItemStore(cfg.MaxItems, cfg.ItemLifetime, time.Now)
		sc := serverConfig(cfg, serverParts{conn: pc, peers: peers, items: items})
		sc2 := serverConfig(cfg, serverParts{conn: pc, peers: peers, items: items})

		if sc.StartingNodes == nil {
			t.Fatal("StartingNodes is nil")
		}
		got, err := sc.StartingNodes()
		if err != nil {
			t.Fatalf("StartingNodes: %v", err)
		}
		var gotAddrs []netip.AddrPort
		for _, a := range got {
			gotAddrs = append(gotAddrs, a.KRPC().ToNodeAddrPort().AddrPort)
		}
		if !slices.Equal(gotAddrs, cfg.Bootstrap) {
			t.Errorf("StartingNodes = %v, want exactly the Bootstrap list %v", gotAddrs, cfg.Bootstrap)
		}
		if sc.Conn != pc {
			t.Errorf("Conn is not the caller's socket")
		}
		if sc.SendLimiter == nil || sc.SendLimiter == dht.DefaultSendLimiter || sc.SendLimiter == sc2.SendLimiter {
			t.Errorf("SendLimiter is shared (default %v, same as another node's %v)", sc.SendLimiter == dht.DefaultSendLimiter, sc.SendLimiter == sc2.SendLimiter)
		}
		if float64(sc.SendLimiter.Limit()) != float64(DefaultSendRate) || sc.SendLimiter.Burst() != DefaultSendBurst {
			t.Errorf("SendLimiter = %v/s burst %d, want %v/s burst %d", sc.SendLimiter.Limit(), sc.SendLimiter.Burst(), DefaultSendRate, DefaultSendBurst)
		}
		if sc.Exp != DefaultItemLifetime {
			t.Errorf("Exp = %v, want %v", sc.Exp, DefaultItemLifetime)
		}
		if sc.PeerStore != peers || sc.Store != items {
			t.Errorf("PeerStore or Store is not ours")
		}
		if sc.NoSecurity {
			t.Errorf("NoSecurity is set: BEP 42 must be enforced against public addresses")
		}
	}
}

// TestNoGlobalBootstrapResolution runs a first node through Bootstrap and its table maintainer and
// checks that the library never started resolving its public routers: the first resolution starts
// the library's DNS cache refresher, a goroutine that never ends.
func TestNoGlobalBootstrapResolution(t *testing.T) {
	first := startNode(t, Config{First: true})
	if err := first.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	joiner := startNode(t, Config{Bootstrap: []netip.AddrPort{first.Addr()}})
	if err := joiner.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let both maintainers run their first round
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "dnsResolverRefresher") {
		t.Fatal("the library resolved its default global bootstrap routers")
	}
}

func TestPublicIPMakesSecureNodeID(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.7")
	n := startNode(t, Config{First: true, PublicIP: public})
	if !dht.NodeIdSecure(n.ID(), public.AsSlice()) {
		t.Errorf("node id %x is not BEP 42-valid for PublicIP %v", n.ID(), public)
	}
	// Without PublicIP a loopback node gets a random id; 1 in 2^21 would pass by chance.
	other := startNode(t, Config{First: true})
	if dht.NodeIdSecure(other.ID(), public.AsSlice()) {
		t.Logf("random id happened to be valid for %v", public)
	}
	if got := publicIP(netip.Addr{}, udpAddr(netip.MustParseAddrPort("198.51.100.4:6881"))); got != netip.MustParseAddr("198.51.100.4") {
		t.Errorf("socket on a public address: publicIP = %v, want that address", got)
	}
	for _, local := range []string{"127.0.0.1:1", "10.240.0.5:1", "192.168.1.2:1", "0.0.0.0:1"} {
		if got := publicIP(netip.Addr{}, udpAddr(netip.MustParseAddrPort(local))); got.IsValid() {
			t.Errorf("socket on %s: publicIP = %v, want none", local, got)
		}
	}
}

func TestNodeIDKeepsSavedOnlyWhenValid(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.7")
	secure := nodeID([20]byte{}, public)
	if got := nodeID(secure, public); got != secure {
		t.Errorf("a saved id valid for the public address was replaced")
	}
	insecure := [20]byte{1, 2, 3}
	if got := nodeID(insecure, public); got == insecure || !dht.NodeIdSecure(got, public.AsSlice()) {
		t.Errorf("a saved id invalid for the public address was kept, or its replacement is invalid")
	}
	if got := nodeID(insecure, netip.Addr{}); got != insecure {
		t.Errorf("without a public address the saved id was replaced")
	}
}

func TestOperationsAfterClose(t *testing.T) {
	n := startNode(t, Config{First: true})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := n.Bootstrap(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Bootstrap after Close: %v, want ErrClosed", err)
	}
	if _, err := n.FindPeers(t.Context(), Infohash{}); !errors.Is(err, ErrClosed) {
		t.Errorf("FindPeers after Close: %v, want ErrClosed", err)
	}
}
