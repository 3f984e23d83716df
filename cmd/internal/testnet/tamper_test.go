package testnet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/tamper"
)

// An attacker on the wire between the client and its guard, with no key, flips bits, duplicates,
// replays and reorders datagrams both ways while 30 MB download through the circuit. Every download
// completes with the right checksum; the client's and the guard's link layers count what the attacker
// spoiled, by reason; and the circuit is never torn down or rebuilt, nor the guard changed.
func TestTampererBetweenClientAndGuard(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cfg := tamper.Config{Flip: 300, Duplicate: 100, Replay: 100, Reorder: 50, Seed: uint64(time.Now().UnixNano())}
	n := start(t, ctx, Options{EntryGuard: "r1", Tamper: &cfg})
	guard := n.Node("r1")
	first, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Circuit.Hops) == 0 || n.NameOf(first.Circuit.Hops[0].Identity) != "r1" {
		t.Fatalf("the client's circuit %+v does not start at r1", first.Circuit.Hops)
	}
	// Two downloads as fast as they go, and one paced to last 5 s: the attack goes on for a while.
	for i, rate := range []int{0, 0, BigSize / 5} {
		d, err := n.DownloadBig(ctx, rate, 60*time.Second)
		if err != nil {
			t.Fatalf("download %d: %v", i+1, err)
		}
		t.Logf("download %d: %d bytes in %v, checksum right", i+1, d.Bytes, d.Took.Round(time.Millisecond))
	}
	ts := n.Tamperer().Stats()
	t.Logf("tamperer: %+v", ts)
	if ts.Flipped == 0 || ts.Duplicated == 0 || ts.Replayed == 0 || ts.Reordered == 0 {
		t.Fatalf("the tamperer did not do everything it should: %+v", ts)
	}

	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "connected" || len(s.Reroutes) != 0 || s.Builds != first.Builds || !s.Circuit.Since.Equal(first.Circuit.Since) {
		t.Errorf("the circuit did not survive: state %s, builds %d then %d, since %v then %v, reroutes %+v",
			s.State, first.Builds, s.Builds, first.Circuit.Since, s.Circuit.Since, s.Reroutes)
	}
	if g := n.NameOf(s.Circuit.Hops[0].Identity); g != "r1" {
		t.Errorf("the guard moved from r1 to %s", g)
	}
	// Both ends of the tampered wire count what it did, by reason.
	for _, reason := range []string{"bad_mac", "replay"} {
		series := fmt.Sprintf(`meshvpn_link_drops_total{reason=%q}`, reason)
		if v, err := n.ClientMetric(series); err != nil || v == 0 {
			t.Errorf("client: %s = %v (%v)", series, v, err)
		}
		if v := metric(t, n, guard, series); v == 0 {
			t.Errorf("guard: %s = 0", series)
		}
	}
	t.Logf("guard: %v", n.Series(guard, "meshvpn_link_drops_total", "meshvpn_relay_drops_total"))
}
