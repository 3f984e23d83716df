package testnet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

func needRoot(t *testing.T) {
	t.Helper()
	needRootAlone(t)
	// Testnets are namespaces of their own (prefixes differ): two run at once (-parallel, the cores),
	// which halves the package's time; they spend most of it waiting on the network.
	t.Parallel()
}

// needRootAlone is needRoot for a test that runs with no other testnet beside it (they run first):
// one that loads the machine on purpose, or whose start once timed out beside another's.
func needRootAlone(t *testing.T) {
	t.Helper()
	_, ipErr := exec.LookPath("ip")
	_, curlErr := exec.LookPath("curl")
	if os.Geteuid() == 0 && ipErr == nil && curlErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, iproute2 and curl, and CI must run it")
	}
	t.Skip("needs root, iproute2 and curl")
}

// start brings a testnet up for t and tears it down after, checking nothing is left behind.
func start(t *testing.T, ctx context.Context, o Options) *Net {
	t.Helper()
	o.Bin = binDir
	n, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pids := n.PIDs()
		if t.Failed() {
			for _, name := range []string{"client", "x1", "a1"} {
				t.Logf("log of %s:\n%s", name, n.Log(name))
			}
		}
		n.Close()
		if left := n.Leftovers(); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("process %d left behind", pid)
			}
		}
	})
	return n
}

func metric(t *testing.T, n *Net, node *Node, series string) float64 {
	t.Helper()
	v, err := n.Metric(node, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTrafficThroughTheTestnet(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := start(t, ctx, Options{})
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(path) != 3 || path[2].Name != "x1" || path[0] == path[1] || path[1] == path[2] || path[0] == path[2] {
		t.Fatalf("path %s → %s → %s", path[0].Name, path[1].Name, path[2].Name)
	}
	out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	exitWeb := "203.0.113.1"
	if !strings.Contains(out, "You came from "+exitWeb+":") {
		t.Fatalf("the server saw the wrong source: %q", out)
	}
	out, err = n.InClient("sh", "-c", "curl -sS --max-time 30 http://"+WebAddr+"/big | sha256sum")
	if err != nil {
		t.Fatal(err)
	}
	want := n.Web.BigSum()
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("10 MB download checksum %s, want %x", got, want)
	}
	if seen := n.Web.Seen(); seen[ClientAddr] || seen[ClientTUNAddr] {
		t.Fatalf("the server saw the client's own address: %v", seen)
	}
	if _, err := n.InClient("ping", "-c", "2", "-i", "0.2", "-W", "2", WebAddr); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "connected" || s.Traffic.BytesIn < BigSize || s.Traffic.PacketsOut == 0 {
		t.Fatalf("client status after 10 MB: %+v", s)
	}
	// The client sits on the hub itself: the bootstrap node's STUN server sees its own address.
	if s.NAT == nil || s.NAT.Mapping != "none" || !strings.HasPrefix(s.NAT.Public, ClientAddr+":") {
		t.Fatalf("NAT status %+v", s.NAT)
	}
	// The exit's session address, a private LAN, the cloud metadata address and the exit's own public
	// address are refused by the exit (with an ICMP error, so curl fails at once) and counted.
	exit := path[2]
	before := metric(t, n, exit, `meshvpn_exit_drops_total{reason="policy"}`)
	for _, dst := range []string{"10.8.0.1", "192.168.1.1", "169.254.169.254", exitWeb} {
		if out, err := n.InClient("curl", "-sS", "--max-time", "5", "http://"+dst+"/"); err == nil {
			t.Fatalf("reached %s through the exit: %q", dst, out)
		}
	}
	if got := metric(t, n, exit, `meshvpn_exit_drops_total{reason="policy"}`) - before; got < 4 {
		t.Fatalf("the exit counted %v refused packets, want at least 4", got)
	}
	for _, reason := range []string{"private", "metadata", "own"} {
		if v := metric(t, n, exit, `meshvpn_exit_denied_total{reason="`+reason+`"}`); v < 1 {
			t.Errorf("the exit counted no packet refused as %s", reason)
		}
	}
}

// TestDownloadSurvivesAMiddleRelayDying kills the middle relay's process during a slow download: the
// client rebuilds a circuit to the same exit, the exit keeps the session, and the download completes
// over the same TCP connection with the right checksum.
func TestDownloadSurvivesAMiddleRelayDying(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{})
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		// 10 MB sent at 2 MB/s: about five seconds, plenty of time to kill a relay in the middle of it.
		out, err := n.InClient("sh", "-c", "curl -sS --max-time 60 'http://"+WebAddr+"/big?rate=2000000' | sha256sum")
		if err != nil {
			out = "error: " + err.Error()
		}
		done <- out
	}()
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	if err := n.Kill(path[1]); err != nil {
		t.Fatal(err)
	}
	var out string
	select {
	case out = <-done:
	case <-time.After(70 * time.Second):
		t.Fatal("the download never finished")
	}
	want := n.Web.BigSum()
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("download after the reroute: %q, want sha256 %x", out, want)
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Reroutes) != 1 || !s.Reroutes[0].SameSession {
		t.Fatalf("reroutes: %+v", s.Reroutes)
	}
	r := s.Reroutes[0]
	for i := range r.Path {
		r.Path[i] = n.NameOf(r.Path[i])
	}
	if r.Path[1] == path[1].Name || r.Path[2] != path[2].Name {
		t.Fatalf("rebuilt through %v after %s died", r.Path, path[1].Name)
	}
	// Most of the file crossed the new middle: about 3.5 s of 2 MB/s is some 2,500 full cells.
	if cells := metric(t, n, n.Node(r.Path[1]), `meshvpn_relay_cells_total{direction="in"}`); cells < 1000 {
		t.Fatalf("the new middle carried only %v cells: the download did not really continue over it", cells)
	}
	// The middle's death reached the client only when the guard's link to it died (dead_after): the
	// outage status reports counts from when the circuit went silent, not from then.
	noticed := float64(r.Died.Sub(killed).Milliseconds())
	if r.OutageMillis < r.GapMillis+noticed/2 {
		t.Fatalf("reroute outage %.0f ms, rebuild %.0f ms, the death noticed %.0f ms after the kill: the outage should count the silence before",
			r.OutageMillis, r.GapMillis, noticed)
	}
	t.Logf("middle %s killed; the client knew %v later (%s), rebuilt through %v with %.0f ms without a circuit (%.0f ms without traffic), same exit session",
		path[1].Name, r.Died.Sub(killed).Round(time.Millisecond), r.Why, r.Path, r.GapMillis, r.OutageMillis)
}

// TestClientCommands drives the client as a user does: status, then down, which removes the TUN
// and the routes; and an exit stopped by its operator removes its NAT table.
func TestClientCommands(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := start(t, ctx, Options{Relays: 3, Exits: 1, RelayList: true})
	cli := n.Bin("meshvpn-client")
	out, err := n.InClient(cli, "status", "--control-socket", n.Socket)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MeshVPN: connected", "guard ", "middle ", "exit   x1", "traffic:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if out, _ := n.InClient("ip", "route", "show"); !strings.Contains(out, "0.0.0.0/1 dev mvc0") || !strings.Contains(out, "128.0.0.0/1 dev mvc0") {
		t.Fatalf("routes while up:\n%s", out)
	}
	if out, err := n.InClient(cli, "up", "--foreground", "--config", "/nonexistent/client.toml"); err == nil {
		t.Fatalf("a missing config file named on the command line was accepted: %s", out)
	}
	if out, err := n.InClient(cli, "down", "--control-socket", n.Socket); err != nil {
		t.Fatalf("down: %v %s", err, out)
	}
	select {
	case <-n.ClientExited():
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not exit after down")
	}
	if out, _ := n.InClient("ip", "route", "show"); strings.Contains(out, "mvc0") || strings.Contains(out, "0.0.0.0/1") {
		t.Fatalf("routes left after down:\n%s", out)
	}
	if _, err := n.InClient("ip", "link", "show", "mvc0"); err == nil {
		t.Fatal("the TUN device outlived the daemon")
	}
	if _, err := os.Stat(n.Socket); !os.IsNotExist(err) {
		t.Fatalf("the control socket outlived the daemon: %v", err)
	}
	// As every daemon, it said at the default log level that it served and that it stopped.
	if log := n.Log("client"); !strings.Contains(log, `"level":"notice"`) || !strings.Contains(log, `"msg":"serving"`) || !strings.Contains(log, `"msg":"stopped"`) {
		t.Errorf("the client's log lacks its serving and stopped notices:\n%s", log)
	}
	// Down, status says so with its own exit code (3) and JSON that parses; down again is no error.
	out, err = n.InClient(cli, "status", "--control-socket", n.Socket)
	if code := exitCode(err); code != 3 || !strings.Contains(out, "MeshVPN: not running") {
		t.Fatalf("status after down: exit %d, %q", code, out)
	}
	out, err = n.InClient(cli, "status", "--json", "--control-socket", n.Socket)
	var st clientd.Status
	if code := exitCode(err); code != 3 || json.Unmarshal([]byte(out), &st) != nil || st.State != "not running" {
		t.Fatalf("status --json after down: exit %d, %q", code, out)
	}
	if out, err := n.InClient(cli, "down", "--control-socket", n.Socket); err != nil || !strings.Contains(out, "was not running") {
		t.Fatalf("down when down: %v %s", err, out)
	}
	x1 := n.Node("x1")
	if _, err := n.InNode(x1, "nft", "list", "table", "ip", "meshvpn"); err != nil {
		t.Fatalf("the exit's NAT table is missing while it runs: %v", err)
	}
	n.Stop(x1)
	if _, err := n.InNode(x1, "nft", "list", "table", "ip", "meshvpn"); err == nil {
		t.Fatal("the exit's NAT table outlived the exit")
	}
}
