package testnet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/netdir"
)

// TestFirstDayAtDefaultFlags builds a network as docs/operators.md does, its authorities at the flag
// rules of their example.toml (stable_age 24 h): no relay is a day old, yet the directory has
// Guards (the young-network rule, core/authority) and a client connects and reaches the web. With
// the absolute rule alone the consensus had no Guard and Start failed waiting for one.
func TestFirstDayAtDefaultFlags(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := start(t, ctx, Options{Relays: 4, Exits: 1, FirstDay: true})
	guards := 0
	for _, r := range n.Consensus.Relays() {
		if r.Flags.Has(netdir.Guard) {
			guards++
		}
	}
	if guards == 0 {
		t.Fatal("the client connected from a directory with no Guard")
	}
	t.Logf("%d Guards among %d relays on the network's first day", guards, n.Consensus.Len())
	out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "You came from 203.0.113.1:") {
		t.Fatalf("the server saw the wrong source: %q", out)
	}
}
