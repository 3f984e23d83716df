package testnet

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A whole circuit across emulated NATs: the client, its guard and the exit each behind a router of
// their own, the other relays public (and serving as rendezvous). The guard and the exit are found by
// the authorities through their rendezvous, the client reaches its guard through the guard's, and the
// middle reaches the exit through the exit's. Behind home NATs every link ends up direct (punched);
// behind symmetric NATs the client's link to its guard stays relayed — and traffic crosses either way.
func TestCircuitAcrossEmulatedNATs(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		kind      NATKind
		mapping   string // what the client's NAT detection finds
		guardLink string // how the client's link to its guard travels
	}{
		{HomeNAT, "endpoint-independent", "punched"},
		{SymmetricNAT, "address/port-dependent", "relayed"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			n := start(t, ctx, Options{Relays: 3, Exits: 1, EntryGuard: "r2",
				NAT: map[string]NATKind{"cl": tc.kind, "r2": tc.kind, "x1": tc.kind}})
			path, err := n.Path(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if path[0].Name != "r2" || path[2].Name != "x1" {
				t.Fatalf("path %s → %s → %s, want r2 first and x1 last", path[0].Name, path[1].Name, path[2].Name)
			}
			middle := path[1]
			for _, node := range []*Node{path[0], path[2]} {
				if v := metric(t, n, node, "meshvpn_node_rendezvous_registered"); v != 1 {
					t.Fatalf("%s behind a %s NAT is not registered with a rendezvous", node.Name, tc.kind)
				}
			}
			t0 := time.Now()
			out, err := n.InClient("sh", "-c", "curl -sS --max-time 30 http://"+WebAddr+"/big | sha256sum")
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(t0)
			want := n.Web.BigSum()
			if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
				t.Fatalf("10 MB download checksum %s, want %x", got, want)
			}
			out, err = n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "You came from 203.0.113.1:") { // x1's router, its way to the internet
				t.Fatalf("the server saw the wrong source: %q", out)
			}
			s, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Circuit.Hops[0].Link; !strings.HasPrefix(got, tc.guardLink+" via ") {
				t.Fatalf("the client's link to its guard: %q, want %s through the guard's rendezvous", got, tc.guardLink)
			}
			if s.NAT == nil || s.NAT.Mapping != tc.mapping || !strings.HasPrefix(s.NAT.Public, ClientAddr+":") {
				t.Fatalf("the client's NAT status %+v: want %s behind its router %s", s.NAT, tc.mapping, ClientAddr)
			}
			// The middle is public, so its link to the exit is punched even through a symmetric NAT: the
			// exit's pings reach it from whatever port the NAT picks, and it answers there. (A middle
			// that is the exit's rendezvous uses the link the exit registered over instead.)
			rv, err := n.Rendezvous(path[2])
			if err != nil {
				t.Fatal(err)
			}
			if v := metric(t, n, middle, `meshvpn_node_links{path="punched"}`); v < 1 && rv != middle.Name {
				t.Fatalf("the middle %s has no punched link (to the exit; x1's rendezvous is %s): middle %s; x1 %s",
					middle.Name, rv, linkCounts(t, n, middle), linkCounts(t, n, path[2]))
			}
			t.Logf("guard link: %s; middle %s: %s; 10 MB in %v (%.1f MB/s)", s.Circuit.Hops[0].Link, middle.Name, linkCounts(t, n, middle),
				took.Round(time.Millisecond), float64(BigSize)/1e6/took.Seconds())
		})
	}
}

func linkCounts(t *testing.T, n *Net, node *Node) string {
	var parts []string
	for _, p := range []string{"direct", "punched", "relayed"} {
		parts = append(parts, fmt.Sprintf("%s %v", p, metric(t, n, node, `meshvpn_node_links{path="`+p+`"}`)))
	}
	return strings.Join(parts, ", ")
}

// When a NAT'd exit's rendezvous dies, the exit registers with another, republishes, the authorities
// list it with the new one, and the client's traffic gets through the exit again.
func TestExitRegistersAgainWhenItsRendezvousDies(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{Relays: 4, Exits: 1, NAT: map[string]NATKind{"x1": HomeNAT}})
	x1 := n.Node("x1")
	first, err := n.Rendezvous(x1)
	if err != nil || first == "" {
		t.Fatalf("x1 names no rendezvous (%v)", err)
	}
	// The rendezvous may be the client's guard or middle too: the client then rebuilds around it as
	// well, to x1 through x1's new rendezvous.
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	role := "not in the client's circuit"
	for i, node := range path {
		if node.Name == first {
			role = []string{"the client's guard", "the client's middle", "the exit"}[i]
		}
	}
	if err := n.Kill(n.Node(first)); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var second string
	deadline := time.Now().Add(30 * time.Second)
	for second == "" || second == first {
		if time.Now().After(deadline) {
			t.Fatalf("x1 still names %q %v after its rendezvous %s died", second, time.Since(killed), first)
		}
		time.Sleep(200 * time.Millisecond)
		second, _ = n.Rendezvous(x1)
	}
	registered := time.Since(killed)
	deadline = time.Now().Add(60 * time.Second)
	for {
		out, err := n.InClient("curl", "-sS", "--max-time", "3", "http://"+WebAddr+"/")
		if err == nil && strings.Contains(out, "You came from 203.0.113.1:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page through x1 %v after its rendezvous %s died (it registered with %s): %v %q", time.Since(killed), first, second, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("rendezvous %s (%s) killed: x1 registered with %s after %v, traffic through x1 again after %v", first, role, second, registered.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
}
