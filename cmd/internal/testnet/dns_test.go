package testnet

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// dnsPackets returns the captured lines of packets to or from port 53 or 853 (tcpdump -nn -q:
// "12:00:00.000000 IP 10.240.0.100.41641 > 10.240.0.11.53: UDP, length 40").
func dnsPackets(lines []string) []string {
	var out []string
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != ">" {
			continue
		}
		for _, end := range []string{f[2], strings.TrimSuffix(f[4], ":")} {
			if strings.HasSuffix(end, ".53") || strings.HasSuffix(end, ".853") {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// TestDNSThroughTheExit: the client's namespace resolves WebName, a name only the internet's resolver
// knows, through the tunnel: curl http://web.meshvpn.test/ works, and tcpdump on the client's outer
// interface sees no DNS (there is no kill switch here to hide a leak: the client's routes and its
// resolv.conf alone keep DNS in the tunnel). The resolver saw the queries come from the exit's address,
// and the exit counted them. The namespace's resolv.conf points at the tunnel resolver while the
// client is up and is put back by `down` — after a kill -9 too.
func TestDNSThroughTheExit(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NoKillSwitch: true})
	up := func(when string) {
		t.Helper()
		conf, err := n.ClientResolvConf()
		if err != nil || !strings.Contains(conf, "\nnameserver 10.99.0.1\n") || strings.Contains(conf, clientLANResolver) {
			t.Fatalf("%s: the client namespace's resolv.conf (%v):\n%s", when, err, conf)
		}
	}
	restored := func(when string) {
		t.Helper()
		if conf, err := n.ClientResolvConf(); err != nil || conf != n.ClientResolvConfBefore() {
			t.Fatalf("%s: the client namespace's resolv.conf was not put back (%v):\n%s", when, err, conf)
		}
	}
	up("up")

	c, err := n.CaptureOutgoing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.InClient("curl", "-sS", "--max-time", "20", "http://"+WebName+"/")
	lines := c.Stop()
	if err != nil || !strings.Contains(out, "Hello from the internet") {
		t.Fatalf("curl http://%s/ (%v): %s", WebName, err, out)
	}
	if leaked := dnsPackets(lines); len(leaked) > 0 {
		t.Errorf("%d DNS packets on the client's outer interface:\n%s", len(leaked), strings.Join(leaked, "\n"))
	}
	exitAddr, _, _ := net.SplitHostPort(n.Web.LastSeen())
	sources := n.Resolver.Sources()
	if len(sources) != 1 || sources[exitAddr] == 0 {
		t.Errorf("the resolver was asked by %v; want only the exit, at %s (where the web server saw the client come from)", sources, exitAddr)
	}
	if v := metric(t, n, n.Node("x1"), `meshvpn_exit_dns_queries_total{result="answered"}`); v < 1 {
		t.Errorf("the exit answered %v queries", v)
	}
	t.Logf("resolver saw %v; web server saw %s; %d packets on the client's outer interface, none DNS", sources, n.Web.LastSeen(), len(lines))

	// kill -9: the file stays pointed at the tunnel until `down`.
	if err := n.KillClient(); err != nil {
		t.Fatal(err)
	}
	up("after kill -9")
	if out, err := n.ClientDown(false); err != nil || !strings.Contains(out, "DNS configuration it replaced is put back") {
		t.Errorf("down after kill -9 (%v): %s", err, out)
	}
	restored("down after kill -9")

	// up again, then down with the daemon running: it puts the file back itself.
	if err := n.RestartClient(ctx); err != nil {
		t.Fatal(err)
	}
	up("up again")
	if out, err := n.InClient("curl", "-sS", "--max-time", "20", "http://"+WebName+"/"); err != nil {
		t.Fatalf("curl after up again (%v): %s", err, out)
	}
	if out, err := n.ClientDown(false); err != nil {
		t.Fatalf("down (%v): %s", err, out)
	}
	restored("down")
}
