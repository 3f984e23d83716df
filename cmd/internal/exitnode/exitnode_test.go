package exitnode

import (
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestExampleConfigIsTheDefault(t *testing.T) {
	c := DefaultConfig()
	c.PublicAddress = "198.51.100.7:7000"
	if err := c.Validate(); err != nil {
		t.Fatalf("the example configuration does not validate: %v", err)
	}
	if c.Listen != "0.0.0.0:7000" || c.Exit.Pool != "10.8.0.0/16" || !c.Exit.Masquerade || c.Metrics != "127.0.0.1:9310" {
		t.Fatalf("defaults: %+v", c)
	}
	c.PublicAddress = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "public_address") {
		t.Fatalf("a wildcard listen address without public_address: %v", err)
	}
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	err := daemon.DecodeConfig("test", []byte(`
data_dir = "relative"
listen = "nonsense"
log_level = "loud"
[link]
dead_after = "1s"
[exit]
pool = "2001:db8::/64"
tun = "a-name-that-is-far-too-long"
grace = "-1s"
policy = "allow everything"
resolvers = ["10.0.0.53", "[2001:db8::53]:5353", "resolver.example"]
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("a broken configuration validated")
	}
	for _, want := range []string{"data_dir", "listen", "log level", "keepalive_interval", "exit.pool", "name", "exit.grace", "exit.policy", "exit.resolvers \"resolver.example\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if err := daemon.DecodeConfig("test", []byte("listne = \"x\"\n[exit]\npolcy = \"\"\n"), &c); err == nil || !strings.Contains(err.Error(), "listne") || !strings.Contains(err.Error(), "exit.polcy") {
		t.Fatalf("misspelt keys: %v", err)
	}
}

// TestRelayOnlyNode starts a relay-only node on loopback: it makes its keys (0600) on first start,
// keeps them across a restart, publishes its entry while it serves, and serves metrics.
func TestRelayOnlyNode(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	c := DefaultConfig()
	c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", dir, "127.0.0.1:0", true, "127.0.0.1:0"
	n, err := Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"identity.key", "link.key", "onion.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, st.Mode().Perm())
		}
	}
	text, err := os.ReadFile(filepath.Join(dir, EntryFile))
	if err != nil {
		t.Fatal(err)
	}
	es, err := relaylist.Parse(text)
	if err != nil || len(es) != 1 {
		t.Fatalf("entry %q: %v", text, err)
	}
	if me := n.Relay().Info(); es[0].Flags.Has(netdir.Exit) || es[0].Name != "r1" || es[0].Identity != me.Identity ||
		es[0].Onion != me.Onion || es[0].LinkKey != me.LinkKey || es[0].Addr != me.Addr {
		t.Fatalf("entry %+v, relay %+v", es[0], n.Relay().Info())
	}
	resp, err := http.Get("http://" + n.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`meshvpn_relay_cells_total{direction="in"} 0`, `meshvpn_relay_drops_total{reason="bad_mac"} 0`, `meshvpn_relay_cell_gaps_total{kind="skipped"} 0`, "process_cpu_seconds_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), "meshvpn_exit_") {
		t.Error("a relay-only node exports exit metrics")
	}
	id := n.Relay().Info().Identity
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, EntryFile)); !os.IsNotExist(err) {
		t.Fatalf("the entry outlived the node: %v", err)
	}
	n, err = Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Relay().Info().Identity != id {
		t.Fatal("the identity changed across a restart")
	}
}

func TestMetricsStayLocal(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.DataDir, c.Listen, c.RelayOnly, c.Metrics = dir, "127.0.0.1:0", true, "0.0.0.0:0"
	if n, err := Start(c, zap.NewNop()); err == nil {
		n.Close()
		t.Fatal("metrics were served on a wildcard address")
	}
}

// TestOperatorsGuideShowsTheExample keeps the configuration in docs/operators.md the real one.
func TestOperatorsGuideShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/operators.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	if !strings.Contains(string(doc), "```toml\n"+ExampleConfig+"```") {
		t.Error("docs/operators.md does not show example.toml as it is; paste `meshvpn-exit-node example-config` into it")
	}
}

// The onion key rotates on schedule: the old one becomes onion-prev.key and is still answered, the
// new one is what the relay, its entry and its descriptor name; at the next rotation the old one goes.
func TestOnionKeyRotates(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", dir, "127.0.0.1:0", true, ""
	c.OnionRotation = time.Hour
	n, err := Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	first := n.onion.Load()
	if first.previous != nil || n.Relay().Info().Onion != first.current.Public() {
		t.Fatal("a new node starts with one onion key, the one it publishes")
	}
	if rotated, err := n.rotateOnion(first.made.Add(59 * time.Minute)); err != nil || rotated {
		t.Fatalf("rotated before it was due (%v)", err)
	}
	if rotated, err := n.rotateOnion(first.made.Add(time.Hour)); err != nil || !rotated {
		t.Fatalf("did not rotate when due (%v)", err)
	}
	second := n.onion.Load()
	if second.current.Public() == first.current.Public() || second.previous.Public() != first.current.Public() {
		t.Fatal("after a rotation the current key is new and the old one is the previous")
	}
	if n.Relay().Info().Onion != second.current.Public() || n.Entry().Onion != second.current.Public() {
		t.Fatal("the relay or its entry still names the old onion key")
	}
	d, err := n.descriptor([32]byte{1}, Keys{Link: mustStatic(t)}, time.Now().UTC().Truncate(time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if from, until := second.window(c.OnionRotation); d.OnionKey != second.current.Public() || !d.ValidFrom.Equal(from) || !d.ValidUntil.Equal(until) {
		t.Fatalf("descriptor names %v valid [%v, %v)", d.OnionKey, d.ValidFrom, d.ValidUntil)
	}
	prev, err := keys.LoadStatic(filepath.Join(dir, prevOnionFile))
	if err != nil || prev.Public() != first.current.Public() {
		t.Fatalf("%s does not hold the old key (%v)", prevOnionFile, err)
	}
	// A restart within the grace keeps both; one after it drops the previous key.
	s, err := loadOnion(dir, second.current, c.OnionRotation, second.made.Add(30*time.Minute))
	if err != nil || s.previous == nil {
		t.Fatalf("within the grace the previous key is dropped (%v)", err)
	}
	s, err = loadOnion(dir, second.current, c.OnionRotation, second.made.Add(time.Hour))
	if err != nil || s.previous != nil {
		t.Fatalf("past the grace the previous key is kept (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, prevOnionFile)); !os.IsNotExist(err) {
		t.Fatalf("%s outlived its grace", prevOnionFile)
	}
}

func mustStatic(t *testing.T) *keys.Static {
	k, err := keys.GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
