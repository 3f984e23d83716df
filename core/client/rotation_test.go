package client_test

import (
	"context"
	crand "crypto/rand"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Onion keys rotate (design property 1): a relay answers under its new key and, for a grace period,
// under the previous one, so that clients whose descriptor is older still build; after the grace
// only the new key works.
func TestOnionKeyRotation(t *testing.T) {
	n := newNet(t, netOptions{relays: 3})
	before := n.path(0, 1, 2) // what a client with the older descriptor knows
	rotated, err := keys.GenerateStatic(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.relays[1].SetOnionKeys([]*keys.Static{rotated, n.onion[1]}); err != nil {
		t.Fatal(err)
	}
	if got := n.relays[1].Info().Onion; got != rotated.Public() {
		t.Fatalf("the relay publishes onion key %v, want the rotated one", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, path := range map[string]int{"older descriptor (grace)": 0, "newer descriptor": 1} {
		p := before
		if path == 1 {
			p = n.path(0, 1, 2)
		}
		c, err := n.client.Build(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Close()
	}
	if err := n.relays[1].SetOnionKeys([]*keys.Static{rotated}); err != nil { // the grace is over
		t.Fatal(err)
	}
	if c, err := n.client.Build(ctx, before); err == nil {
		c.Close()
		t.Fatal("a circuit was built under an onion key the relay has retired")
	}
	c, err := n.client.Build(ctx, n.path(0, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := n.relays[1].SetOnionKeys(nil); err == nil {
		t.Fatal("a relay took an empty set of onion keys")
	}
}
