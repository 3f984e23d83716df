// Command meshvpn-bootstrap creates MeshVPN networks: `init` writes a new network's genesis file,
// `testnet` starts a complete network on this machine in network namespaces (what `make demo` runs),
// every node a process of its own from the same folder as this program, and `soak` repeats the demo's
// reroute under load on such networks (what `make soak` runs).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/network/tun"
)

const usage = `meshvpn-bootstrap creates MeshVPN networks.

Usage:
  meshvpn-bootstrap init [flags]      write a new network's genesis file (see init --help)
  meshvpn-bootstrap check GENESIS-FILE
                                      check a genesis file as the nodes read it: "configuration OK"
                                      (exit 0), or the errors (exit 2)
  meshvpn-bootstrap version           print the commit and the Go version this program was built from
  meshvpn-bootstrap testnet [flags]   start a whole network in network namespaces on this machine
                                      (root): relays, exits with NAT, a client with a TUN device and a
                                      web server that only exits reach, each node a process of its own
                                      (meshvpn-exit-node and meshvpn-client, found beside this program). It runs until Ctrl-C, or, with
                                      --demo, sends real traffic through a circuit, prints what
                                      happened and exits (non-zero if any step failed).
  meshvpn-bootstrap soak [flags]      kill the circuit's middle relay during a download many times
                                      over (--runs), on testnets in namespaces, with the machine kept
                                      busy (--disturb), and report how many reroutes kept the TCP
                                      connection (root; see soak --help)
  meshvpn-bootstrap soak-long [flags] one testnet with traffic for --duration (30m) and the middle
                                      killed every --kill-every; reports each reroute's gap, lost
                                      connections, the directory's age, each daemon's memory and a
                                      verdict (root; see soak-long --help)

Flags of testnet:
`

func main() {
	if len(os.Args) < 2 {
		printUsage(os.Stderr)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "-h", "--help", "help":
		printUsage(os.Stdout)
	case "version", "--version", "-version":
		os.Exit(runVersion())
	case "check":
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	case "testnet":
		os.Exit(runTestnet(os.Args[2:]))
	case "init":
		os.Exit(runInit(os.Args[2:]))
	case "soak":
		os.Exit(runSoak(os.Args[2:]))
	case "soak-long":
		os.Exit(runSoakLong(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "meshvpn-bootstrap: unknown command %q (try --help)\n", os.Args[1])
		os.Exit(2)
	}
}

type options struct {
	relays, exits int
	backend       string
	demo          bool
	iperfSeconds  int
	nat           string
}

var opts options

func testnetFlags(fs *flag.FlagSet) *flag.FlagSet {
	fs.IntVar(&opts.relays, "relays", 5, "number of relays")
	fs.IntVar(&opts.exits, "exits", 2, "number of exits")
	fs.StringVar(&opts.backend, "tun", string(tun.BackendWireGuard), "TUN backend: wireguard or water")
	fs.BoolVar(&opts.demo, "demo", false, "send traffic through a circuit, print the results and exit")
	fs.IntVar(&opts.iperfSeconds, "iperf-seconds", 3, "length of the demo's iperf3 run (0 skips it)")
	fs.StringVar(&opts.nat, "nat", "cl=home,x1=home", "nodes behind emulated NATs of their own: name=home|symmetric, comma-separated (cl is the client); \"\" for none")
	return fs
}

func runTestnet(args []string) int {
	fs := testnetFlags(flag.NewFlagSet("testnet", flag.ContinueOnError))
	if code, ok := parseFlags(fs, args, usage, os.Stdout, os.Stderr); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	nat, err := parseNAT(opts.nat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testnet: --nat:", err)
		return 2
	}
	n, err := testnet.Start(ctx, testnet.Options{Relays: opts.relays, Exits: opts.exits, Backend: tun.Backend(opts.backend), NAT: nat})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testnet:", err)
		return 1
	}
	defer func() {
		n.Close()
		if left := n.Leftovers(); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "testnet: namespaces left behind:", left)
		}
	}()
	fmt.Printf("network up in %v, every node a process in its own namespace on the hub 10.240.0.0/24:\n", time.Since(start).Round(time.Millisecond))
	if n.Genesis != nil {
		fmt.Printf("  genesis     network %q, id %x…, %d authorities of which %d must agree\n", n.Genesis.Name, n.Genesis.NetworkID[:6], len(n.Genesis.Authorities), n.Genesis.Threshold)
		for i, b := range n.Genesis.Bootstrap {
			fmt.Printf("  bootstrap   meshvpn-dht-bootstrap at %v (DHT), STUN at %v\n", b, n.Genesis.STUN[i])
		}
		for _, a := range n.Authorities {
			fmt.Printf("  authority   %s meshvpn-discovery at %s, key %s…\n", a.Name, a.URL(), a.Identity.String()[:12])
		}
	}
	fmt.Printf("  relays      %d meshvpn-exit-node --relay-only, %d exits (meshvpn-exit-node with NAT to the web network)\n", len(n.Relays)-len(n.Exits), len(n.Exits))
	fmt.Printf("  client      meshvpn-client at %s; web server at %s, reachable only through an exit\n", testnet.ClientAddr, testnet.WebAddr)
	for _, name := range slices.Sorted(maps.Keys(nat)) {
		who := name
		if name == "cl" {
			who = "client"
		}
		fmt.Printf("  NAT         %s behind a %s NAT router of its own, which holds its hub address and lets nothing in unasked\n", who, nat[name])
	}
	if c := n.Consensus; c != nil {
		fmt.Printf("\nthe relays published themselves on the DHT; the authorities found, probed and listed them.\n")
		fmt.Printf("consensus of %d authorities (each document signed, hash-chained):\n", len(c.Sources()))
		relays := c.Relays()
		slices.SortFunc(relays, func(a, b netdir.Relay) int { return strings.Compare(n.NameOf(a.Name), n.NameOf(b.Name)) })
		for _, r := range relays {
			fmt.Printf("  %-3s %-17s %-40s weight %d\n", n.NameOf(r.Name), r.Addr, r.Flags, r.Weight)
		}
	}
	s, err := n.Status(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testnet: client status:", err)
		return 1
	}
	fmt.Printf("\nthe client's circuit (TUN mvc0, MTU %d, all traffic routed into it):\n", s.MTU)
	for _, h := range s.Circuit.Hops {
		fmt.Printf("  %-6s %-3s %-17s identity %s…", h.Role, n.NameOf(h.Name), h.Address, h.Identity[:12])
		if h.Link != "" {
			fmt.Printf("  link: %s", h.Link)
		}
		fmt.Println()
	}
	printLinks(ctx, n)

	if !opts.demo {
		fmt.Printf("\nTry: ip netns exec %s-cl curl http://%s/\n     ip netns exec %s-cl %s status --control-socket %s\nCtrl-C stops the network.\n",
			n.Prefix, testnet.WebAddr, n.Prefix, n.Bin("meshvpn-client"), n.Socket)
		<-ctx.Done()
		return 0
	}
	if err := demo(ctx, n); err != nil {
		fmt.Fprintln(os.Stderr, "\nDEMO FAILED:", err)
		fmt.Fprintln(os.Stderr, "every node's config, data directory and log are kept in", n.KeepFiles())
		return 1
	}
	fmt.Println("\nDemo passed: the traffic went through three relays and the web server saw only the exit; with the client killed, nothing leaked.")
	return 0
}

func demo(ctx context.Context, n *testnet.Net) error {
	fmt.Printf("\n1. GET http://%s/ from the client's namespace\n", testnet.WebAddr)
	out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+testnet.WebAddr+"/")
	if err != nil {
		return err
	}
	fmt.Print("   ", out)
	seen := n.Web.LastSeen()
	host := seen[:strings.LastIndexByte(seen, ':')]
	if !strings.HasPrefix(host, "203.0.113.") || host == testnet.WebAddr {
		return fmt.Errorf("the server saw %s, not an exit's address", seen)
	}
	fmt.Printf("   the server saw %s (the exit's address), not the client's %s or %s\n", host, testnet.ClientAddr, testnet.ClientTUNAddr)
	out, err = n.InClient("getent", "hosts", testnet.WebName) // DNS through the tunnel, answered at the exit
	answer := strings.Fields(out)
	if err != nil || len(answer) == 0 {
		return fmt.Errorf("resolving %s through the tunnel: %v %s", testnet.WebName, err, out)
	}
	fmt.Printf("   DNS: %s is %s, answered through the tunnel by the exit's resolver (which saw %v)\n", testnet.WebName, answer[0], slices.Sorted(maps.Keys(n.Resolver.Sources())))

	fmt.Printf("\n2. download a %d MB file and compare checksums\n", testnet.BigSize>>20)
	d, err := n.DownloadBig(ctx, 0, 60*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("   sha256 %x… matches the server's, %.1f MB/s\n", d.Sum[:8], float64(testnet.BigSize)/1e6/d.Took.Seconds())

	fmt.Println("\n3. ping through the tunnel")
	out, err = n.InClient("ping", "-c", "3", "-i", "0.2", "-W", "2", testnet.WebAddr)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "packet loss") || strings.Contains(line, "rtt") {
			fmt.Println("  ", line)
		}
	}

	if opts.iperfSeconds > 0 {
		fmt.Printf("\n4. iperf3, one TCP flow for %d s\n", opts.iperfSeconds)
		if _, err := exec.LookPath("iperf3"); err != nil {
			return errors.New("iperf3 is not installed (make deps installs it)")
		}
		bps, err := n.Iperf(n.WebNamespace(), testnet.WebAddr, opts.iperfSeconds)
		if err != nil {
			return err
		}
		fmt.Printf("   %.0f Mbit/s through the tunnel\n", bps/1e6)
	}

	path, err := n.Path(ctx)
	if err != nil {
		return err
	}
	middle := path[1]
	fmt.Printf("\n5. kill the middle relay (%s, SIGKILL) during a 10 MB download (the server sends at 2 MB/s)\n", middle.Name)
	rr, err := n.KillMiddleDuringDownload(ctx, 2_000_000, 1500*time.Millisecond, 60*time.Second)
	if err != nil {
		if rr != nil {
			fmt.Print(indent(n.Explain(rr), "   "))
		}
		return err
	}
	r := rr.Record
	for i := range r.Path {
		r.Path[i] = n.NameOf(r.Path[i])
	}
	fmt.Printf("   the client learned of it after %v (%s)\n", r.Died.Sub(rr.KilledAt).Round(time.Millisecond), r.Why)
	fmt.Printf("   rebuilt through %s in %.0f ms; the exit kept the session: %v\n", strings.Join(r.Path, " → "), r.GapMillis, r.SameSession)
	fmt.Printf("   the same TCP connection finished the download over the new middle (%.0f cells, longest stall %v); checksum matches\n",
		n.MustMetric(n.Node(r.Path[1]), `meshvpn_relay_cells_total{direction="in"}`), rr.Download.LongestStall.Round(time.Millisecond))

	fmt.Println("\n6. what the relays did (from each node's /metrics)")
	for _, node := range n.Relays {
		if node == middle {
			fmt.Printf("   %-3s killed\n", node.Name)
			continue
		}
		m := func(series string) float64 { return n.MustMetric(node, series) }
		fmt.Printf("   %-3s cells in %7.0f out %7.0f   circuits %.0f   bad MAC %.0f  replays %.0f  queue drops %.0f\n",
			node.Name, m(`meshvpn_relay_cells_total{direction="in"}`), m(`meshvpn_relay_cells_total{direction="out"}`),
			m("meshvpn_relay_circuits"), m(`meshvpn_relay_drops_total{reason="bad_mac"}`),
			m(`meshvpn_relay_drops_total{reason="replay"}`), m(`meshvpn_relay_drops_total{reason="queue_full"}`))
	}

	fmt.Println("\n7. meshvpn-client status")
	out, err = n.InClient(n.Bin("meshvpn-client"), "status", "--control-socket", n.Socket)
	if err != nil {
		return err
	}
	fmt.Print(out)
	return demoKillSwitch(ctx, n, 8)
}

// indent puts prefix before every line of s.
func indent(s, prefix string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}

// parseNAT reads --nat: name=home|symmetric, comma-separated.
func parseNAT(s string) (map[string]testnet.NATKind, error) {
	out := make(map[string]testnet.NATKind)
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, kind, ok := strings.Cut(part, "=")
		switch k := testnet.NATKind(kind); {
		case !ok || name == "":
			return nil, fmt.Errorf("%q: want name=home or name=symmetric", part)
		case k != testnet.HomeNAT && k != testnet.SymmetricNAT:
			return nil, fmt.Errorf("%q: the NAT is home or symmetric", part)
		default:
			out[name] = k
		}
	}
	return out, nil
}

// printLinks shows how the circuit's relays reach each other: straight, through a hole punched with
// a rendezvous's help, or relayed by one.
func printLinks(ctx context.Context, n *testnet.Net) {
	path, err := n.Path(ctx)
	if err != nil {
		return
	}
	for _, node := range path {
		counts := make([]string, 0, 3)
		for _, p := range []string{"direct", "punched", "relayed"} {
			if v, err := n.Metric(node, `meshvpn_node_links{path="`+p+`"}`); err == nil && v > 0 {
				counts = append(counts, fmt.Sprintf("%v %s", v, p))
			}
		}
		where := "on the hub"
		if node.NAT != "" {
			where = fmt.Sprintf("behind a %s NAT, reached through its rendezvous", node.NAT)
		}
		fmt.Printf("  %s (%s): links %s\n", node.Name, where, strings.Join(counts, ", "))
	}
}
