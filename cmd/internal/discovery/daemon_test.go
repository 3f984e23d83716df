package discovery

import (
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lonelyConfig is the configuration of an authority on loopback, the only one of a network with a
// one-node DHT, whose genesis names auth (nil: the authority's own key, made in its data directory).
func lonelyConfig(t *testing.T, auth *keys.IdentityPublic) Config {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Genesis, cfg.Period = filepath.Join(dir, "data"), filepath.Join(dir, "genesis"), time.Second
	cfg.DHT.Listen, cfg.HTTP.Listen, cfg.Probe.Source, cfg.Metrics = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1", "127.0.0.1:0"
	if auth == nil {
		id, err := LoadIdentity(cfg.DataDir, false, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		pub := id.Public()
		auth = &pub
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := dht.New(dht.Config{Conn: conn, First: true, Logger: zap.NewNop()})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	g := &genesis.Genesis{
		Name: "test", Threshold: 1, Bootstrap: []netip.AddrPort{boot.Addr()},
		Authorities: []genesis.Authority{{Identity: *auth, URL: "http://127.0.0.1/"}},
	}
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	b, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Genesis, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMetrics: the daemon serves the authority's counters and its latest document's figures.
func TestMetrics(t *testing.T) {
	d, err := Start(lonelyConfig(t, nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if doc, _ := d.Latest(); doc != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no document after 10 s")
		}
	}
	resp, err := http.Get("http://" + d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, want := range []string{
		"meshvpn_discovery_directory_serial ", `meshvpn_discovery_descriptors_refused_total{reason="signature"}`,
		`meshvpn_discovery_probes_total{result="ok"}`, `meshvpn_discovery_directory_flag_relays{flag="Running"} `,
		`meshvpn_discovery_relays_found{kind="identities"} `, "meshvpn_discovery_round_seconds ",
		"meshvpn_link_", // the probe client's links
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestNotAnAuthority: a key the genesis file does not name is refused, with what to do about it.
func TestNotAnAuthority(t *testing.T) {
	other, _ := keys.GenerateIdentity(rand.Reader)
	pub := other.Public()
	d, err := Start(lonelyConfig(t, &pub), zap.NewNop())
	if err == nil {
		d.Close()
		t.Fatal("started with a key the genesis does not name")
	}
	if !strings.Contains(err.Error(), "is not an authority of network \"test\"") || !strings.Contains(err.Error(), "meshvpn-discovery info") {
		t.Fatalf("error %q", err)
	}
}
