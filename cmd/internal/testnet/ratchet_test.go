package testnet

import (
	"context"
	"testing"
	"time"
)

// A TCP download through the real daemons, in namespaces, across several scheduled layer-key ratchets
// (2 s here): every byte arrives in order and right, the keys moved on at the client and at every hop
// of the path, the hops erased the old ones, and no cell was refused at a switch.
func TestStreamAcrossLayerKeyRatchets(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const every = 2 * time.Second
	n := start(t, ctx, Options{RatchetEvery: every})
	path, err := n.Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drops := func() (total float64) {
		for _, node := range path {
			for _, reason := range []string{"bad_mac", "replay"} {
				total += metric(t, n, node, `meshvpn_relay_drops_total{reason="`+reason+`"}`)
			}
		}
		return total
	}
	before := drops()
	s0, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const seconds = 12
	st := n.StartStream(ctx, 200_000, seconds, seconds*time.Second+30*time.Second)
	select {
	case <-st.Done():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if s := st.State(); !s.Success {
		t.Fatalf("stream across the ratchets: %+v", s)
	}
	s1, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client: %d ratchets, %d keys erased during the stream", s1.KeyRatchets-s0.KeyRatchets, s1.KeysErased-s0.KeysErased)
	if s1.KeyRatchets-s0.KeyRatchets < 3 || s1.KeysErased-s0.KeysErased < 3 {
		t.Fatalf("the client's keys did not move on every %v during a %d s stream: %+v then %+v", every, seconds, s0, s1)
	}
	for _, node := range path {
		r := metric(t, n, node, `meshvpn_relay_key_ratchets_total{event="ratchet"}`)
		e := metric(t, n, node, `meshvpn_relay_key_ratchets_total{event="erased"}`)
		t.Logf("%s: %v ratchets, %v keys erased", node.Name, r, e)
		if r < 3 || e < 3 {
			t.Fatalf("%s: %v ratchets and %v keys erased, want at least 3 of each", node.Name, r, e)
		}
	}
	if d := drops() - before; d != 0 {
		t.Fatalf("%v cells refused (bad MAC or replay) by the path's relays during the stream", d)
	}
}
