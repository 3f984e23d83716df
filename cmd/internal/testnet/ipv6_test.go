package testnet

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// url6 is the web server's address in a URL.
const url6 = "http://[" + WebAddr6 + "]"

// TestIPv6ThroughTheExit (issue 13): with exits that carry IPv6, `curl -6` from the client's namespace
// reaches the web server through the tunnel and the server sees the exit's IPv6 address, never the
// client's; a 10 MB download over IPv6 arrives whole (every checksum the exit patched held), ping -6
// is answered, and an IPv6 destination the exit refuses fails at once.
func TestIPv6ThroughTheExit(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{IPv6: true, ClientIPv6: true})
	for _, r := range n.Consensus.Relays() {
		if x := n.byIdentity(r.Identity.String()); x != nil && x.Exit && !r.IPv6 {
			t.Fatalf("the directory does not say %s carries IPv6", x.Name)
		}
	}
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.InClient("curl", "-6", "-sS", "--max-time", "10", url6+"/")
	if err != nil {
		t.Fatalf("curl -6 through the tunnel: %v", err)
	}
	exitWeb6 := "2001:db8:113::1" // x1's address on the web network
	if path[2].Name != "x1" || !strings.Contains(out, "You came from ["+exitWeb6+"]:") {
		t.Fatalf("the server saw the wrong source through %s: %q", path[2].Name, out)
	}
	out, err = n.InClient("sh", "-c", "curl -6 -sS --max-time 30 "+url6+"/big | sha256sum")
	if err != nil {
		t.Fatal(err)
	}
	want := n.Web.BigSum()
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("10 MB download over IPv6: checksum %s, want %x", got, want)
	}
	if _, err := n.InClient("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", WebAddr6); err != nil {
		t.Fatalf("ping -6 through the tunnel: %v", err)
	}
	if seen := n.Web.Seen(); seen[ClientAddr6] || seen["fd6d:7670:6e00::2"] || !seen[exitWeb6] {
		t.Fatalf("the server saw %v", seen)
	}
	before := metric(t, n, path[2], `meshvpn_exit_drops_total{reason="policy"}`)
	// The exit's own TUN address, 127.0.0.1 behind 6to4, discard-only space.
	for _, dst := range []string{"[fd00:8::1]", "[2002:7f00:1::1]", "[100::1]"} {
		if out, err := n.InClient("curl", "-6", "-sS", "--max-time", "5", "http://"+dst+"/"); err == nil {
			t.Fatalf("reached %s through the exit: %q", dst, out)
		}
	}
	if got := metric(t, n, path[2], `meshvpn_exit_drops_total{reason="policy"}`) - before; got < 3 {
		t.Fatalf("the exit counted %v refused IPv6 packets", got)
	}
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Traffic.BytesIn < BigSize {
		t.Fatalf("client status after 10 MB over IPv6: %+v", s.Traffic)
	}
}

// TestIPv6NeverLeavesWithoutAnExitThatCarriesIt (issue 13): the client has IPv6 of its own on the hub
// and a default IPv6 route there, its exits carry no IPv6, and its kill switch is off: IPv6 to the
// internet is dropped inside the tunnel and counted, and tcpdump on the client's outer interface sees
// none of it leave. (A ping to the hub's router, on the client's own link, does leave: the capture sees
// IPv6.)
func TestIPv6NeverLeavesWithoutAnExitThatCarriesIt(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{ClientIPv6: true, NoKillSwitch: true})

	c, err := n.CaptureOutgoing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.InClient("ping", "-6", "-c", "1", "-W", "2", hubAddr6)
	if got := ipv6Leaks(c.Stop()); len(got) == 0 {
		t.Fatal("the capture saw no IPv6 on the client's own link: it could not see a leak either")
	}

	before, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err = n.CaptureOutgoing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := n.InClient("curl", "-6", "-sS", "--max-time", "3", url6+"/"); err == nil {
		t.Errorf("curl -6 got an answer: %q", out)
	}
	if _, err := n.InClient("ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", WebAddr6); err == nil {
		t.Error("ping -6 was answered")
	}
	n.InClient("curl", "-6", "-sS", "--max-time", "2", "http://[2001:db8:113::99]/")
	if got := ipv6Leaks(c.Stop()); len(got) > 0 {
		t.Errorf("%d IPv6 packets left the client's namespace outside the tunnel:\n%s", len(got), strings.Join(got, "\n"))
	}
	after, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Drops["ipv6"] - before.Drops["ipv6"]; d < 3 {
		t.Errorf("the client counted %d IPv6 packets dropped in the tunnel, want at least 3", d)
	}
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil || !strings.Contains(out, "You came from") {
		t.Errorf("IPv4 through the tunnel alongside: %v %q", err, out)
	}
}

// ipv6Leaks returns the captured IPv6 packets other than neighbour discovery and multicast listener
// reports, which the kernel sends on the link by itself and which carry nothing of the user's.
func ipv6Leaks(lines []string) []string {
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) < 2 || f[1] != "IP6" || isNeighbourDiscovery(l) || strings.Contains(l, "multicast listener") {
			continue
		}
		out = append(out, l)
	}
	return out
}
