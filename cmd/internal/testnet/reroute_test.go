package testnet

import (
	"context"
	"testing"
	"time"
)

// The client keeps its directory fresh through its tunnel (the exit carries fetches to the
// authorities): the directory it uses is never older than its refresh period and a margin. The client
// is behind a router of its own: on the hub itself, the authorities would be on its own network,
// whose route beats the tunnel's (the fetches went straight there until the kill switch, which
// blocks the LAN, stopped them).
func TestDirectoryStaysFreshThroughTheTunnel(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NAT: map[string]NATKind{"cl": HomeNAT}})
	first, err := n.Status(ctx)
	if err != nil || first.Directory == nil {
		t.Fatalf("status: %v %+v", err, first.Directory)
	}
	// The testnet's client refreshes every 2 s: in 8 s, a fetch through the tunnel must have landed.
	time.Sleep(8 * time.Second)
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(s.Directory.Fetched); !s.Directory.Fetched.After(first.Directory.Fetched) || age > 6*time.Second {
		t.Fatalf("the directory was fetched at %v and not since (%v ago; connected %v)", first.Directory.Fetched, age, s.State)
	}
	if s.State != "connected" || len(s.Reroutes) != 0 {
		t.Fatalf("state %s, reroutes %+v", s.State, s.Reroutes)
	}
}

// When the middle dies together with the NAT'd exit's rendezvous, the client's directory names a dead
// way to the exit: every rebuild through another middle fails at the exit until the client learns the
// exit's new rendezvous. With no circuit it fetches the directory around the tunnel, and the TCP flow
// survives, on the same exit session.
func TestRerouteWhenTheExitsRendezvousDiesWithTheMiddle(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 270*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NAT: map[string]NATKind{"x1": HomeNAT}})
	x1 := n.Node("x1")
	rv, err := n.Rendezvous(x1)
	if err != nil || rv == "" {
		t.Fatalf("x1 names no rendezvous (%v)", err)
	}
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if path[1].Name == rv {
		t.Fatalf("the middle %s is x1's rendezvous, though other relays were free", rv)
	}
	// The limit allows for TCP's retransmission backoff after an outage of up to a minute (the next
	// retransmission can come as late again), which is what the authorities' pipeline can take to
	// list the exit's new rendezvous.
	r, err := n.KillDuringDownload(ctx, 2_000_000, 1500*time.Millisecond, 180*time.Second,
		func([]*Node) []*Node { return []*Node{n.Node(rv)} })
	if err != nil {
		t.Logf("%s", n.Explain(r))
		t.Fatal(err)
	}
	now, _ := n.Rendezvous(x1)
	t.Logf("killed middle %s and x1's rendezvous %s: x1 registered with %s; %.0f ms without a circuit (%d build failures), longest stall %v; session kept",
		r.Killed.Name, rv, now, r.Record.GapMillis, r.Status.BuildFailures, r.Download.LongestStall.Round(time.Millisecond))
}
