package testnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/appsplit"
)

// x1Web is x1's address on the web network: where its clients' traffic comes from.
const x1Web = "203.0.113.1"

// cameFrom fetches http://addr/ from the client's namespace and returns the source address the web
// server saw ("" when the fetch failed).
func cameFrom(t *testing.T, n *Net, addr string) string {
	t.Helper()
	out, err := n.InClient("curl", "-4", "-sS", "--max-time", "10", "http://"+addr+"/")
	if err != nil {
		return ""
	}
	_, from, ok := strings.Cut(strings.TrimSpace(out), "You came from ")
	if !ok {
		t.Fatalf("curl http://%s/: %s", addr, out)
	}
	return from[:strings.LastIndex(from, ":")]
}

// TestSplitTunnelling: the client reaches the internet two ways, through the tunnel and directly
// (Options.DirectWeb, its own default route). With exclude, the web server sees the excluded address's
// requests come from the client itself and the rest from the exit; after kill -9, the kill switch
// still lets exactly the excluded range through. In include mode (the same network, the client
// restarted with include), the other way round.
func TestSplitTunnelling(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	n := start(t, ctx, Options{DirectWeb: true, Exclude: []string{WebAddr2 + "/32"}})

	if from := cameFrom(t, n, WebAddr2); from != ClientAddr {
		t.Errorf("exclude: the excluded %s saw the client come from %q, want its own address %s", WebAddr2, from, ClientAddr)
	}
	if from := cameFrom(t, n, WebAddr); from != x1Web {
		t.Errorf("exclude: %s saw the client come from %q, want the exit's %s", WebAddr, from, x1Web)
	}
	if rs, err := n.ClientRuleset(); err != nil || !strings.Contains(rs, WebAddr2) {
		t.Errorf("the kill switch does not name the excluded range (%v):\n%s", err, rs)
	}

	// The daemon dies: its routes go, the host's default route is left, and the kill switch lets out
	// the excluded range and nothing else.
	if err := n.KillClient(); err != nil {
		t.Fatal(err)
	}
	if from := cameFrom(t, n, WebAddr2); from != ClientAddr {
		t.Errorf("after kill -9: the excluded %s saw %q, want %s", WebAddr2, from, ClientAddr)
	}
	if from := cameFrom(t, n, WebAddr); from != "" {
		t.Errorf("after kill -9: %s was reached, from %s, past the kill switch", WebAddr, from)
	}

	// Include mode: only WebAddr goes through the tunnel.
	path := n.clientConfig()
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	include := strings.Replace(string(cfg), "exclude = [", "include = [", 1)
	include = strings.Replace(include, WebAddr2+"/32", WebAddr+"/32", 1)
	if include == string(cfg) {
		t.Fatalf("no exclude line in the client's config:\n%s", cfg)
	}
	if err := os.WriteFile(path, []byte(include), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.RestartClient(ctx); err != nil {
		t.Fatal(err)
	}
	if from := cameFrom(t, n, WebAddr); from != x1Web {
		t.Errorf("include: the included %s saw the client come from %q, want the exit's %s", WebAddr, from, x1Web)
	}
	if from := cameFrom(t, n, WebAddr2); from != ClientAddr {
		t.Errorf("include: %s saw the client come from %q, want its own address %s", WebAddr2, from, ClientAddr)
	}
}

// TestSplitTunnellingByProgram: `meshvpn-client exclude -- curl` reaches the web server from the
// client's own address, a curl started otherwise from the exit's; the kill switch stays armed.
func TestSplitTunnellingByProgram(t *testing.T) {
	needRoot(t)
	if _, err := appsplit.CgroupRoot(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{DirectWeb: true})
	excluded := func() string {
		out, err := n.InClient(filepath.Join(n.bin, "meshvpn-client"), "exclude", "--config", n.clientConfig(), "--",
			"curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/")
		_, from, ok := strings.Cut(strings.TrimSpace(out), "You came from ")
		if err != nil || !ok {
			t.Logf("meshvpn-client exclude -- curl (%v): %s", err, out)
			return ""
		}
		return from[:strings.LastIndex(from, ":")]
	}
	if from := excluded(); from != ClientAddr {
		t.Errorf("a program started with exclude: the web server saw %q, want the client's own %s", from, ClientAddr)
	}
	if from := cameFrom(t, n, WebAddr); from != x1Web {
		t.Errorf("another program: the web server saw %q, want the exit's %s", from, x1Web)
	}
	if s, err := n.Status(ctx); err != nil || s.KillSwitch == nil || !s.KillSwitch.Armed {
		t.Errorf("the kill switch is not armed (%v): %+v", err, s.KillSwitch)
	}
	// The daemon dies: a program started with exclude still goes around (as an excluded range does),
	// nothing else gets out; after down --keep-blocking, nothing at all.
	if err := n.KillClient(); err != nil {
		t.Fatal(err)
	}
	if from := excluded(); from != ClientAddr {
		t.Errorf("after kill -9, a program started with exclude: the web server saw %q, want %s", from, ClientAddr)
	}
	if from := cameFrom(t, n, WebAddr); from != "" {
		t.Errorf("after kill -9, another program got out, from %s", from)
	}
	if out, err := n.ClientDown(true); err != nil {
		t.Fatalf("down --keep-blocking (%v): %s", err, out)
	}
	if from := excluded(); from != "" {
		t.Errorf("after down --keep-blocking, a program started with exclude got out, from %s", from)
	}
}

// TestSplitTunnellingByDomain: with exclude_domains naming the testnet's domain, curl
// http://web.meshvpn.test/ (the name looked up through the tunnel, its answer watched on the way
// back) reaches the web server from the client's own address; the same server at an address no
// listed name gave, from the exit's.
func TestSplitTunnellingByDomain(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{DirectWeb: true, ExcludeDomains: []string{"meshvpn.test"}})
	if from := cameFrom(t, n, WebName); from != ClientAddr {
		t.Errorf("%s: the web server saw %q, want the client's own %s", WebName, from, ClientAddr)
	}
	if from := cameFrom(t, n, WebAddr2); from != x1Web {
		t.Errorf("%s, no listed name's: the web server saw %q, want the exit's %s", WebAddr2, from, x1Web)
	}
	if sources := n.Resolver.Sources(); sources[ClientAddr] > 0 {
		t.Errorf("the client asked the internet's resolver itself: %v (names go through the tunnel)", sources)
	}
}
