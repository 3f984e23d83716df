package directory

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// authorities returns the keys of the authorities with seeds 1..n.
func authorities(t *testing.T, n int) []keys.IdentityPublic {
	var out []keys.IdentityPublic
	for i := range n {
		out = append(out, identity(t, byte(i+1)).Public())
	}
	return out
}

// votes signs one serial-1 document per seed, all listing entries.
func votes(t *testing.T, seeds []byte, entries ...Entry) []*Directory {
	var out []*Directory
	for _, s := range seeds {
		d, _ := signed(t, s, document(1, [32]byte{}, entries...))
		out = append(out, d)
	}
	return out
}

func TestCombineThreshold(t *testing.T) {
	auths := authorities(t, 3)
	e := entry(1, Running, 10, 100)
	c, err := Combine(network, auths, 2, votes(t, []byte{1, 2}, e), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) != 2 || len(c.Relays) != 1 || c.Relays[0].Entry != e || c.Relays[0].Votes != 2 {
		t.Fatalf("%+v", c)
	}
	if r, ok := c.Lookup(relayID(1)); !ok || r.Entry != e {
		t.Fatal("Lookup", r, ok)
	}
	if _, ok := c.Lookup(relayID(2)); ok {
		t.Fatal("Lookup of an absent relay")
	}
	if !c.ValidUntil.Equal(t0.Add(3 * time.Hour)) {
		t.Fatal(c.ValidUntil)
	}
	if _, err := Combine(network, auths, 2, votes(t, []byte{1}, e), t0); !errors.Is(err, ErrNoConsensus) {
		t.Fatalf("1 of 3: %v", err)
	}
	// With nothing ignored, the message says so plainly (it once read "%!w(<nil>)").
	if _, err := Combine(network, auths, 2, nil, t0); err == nil || strings.Contains(err.Error(), "%!") {
		t.Fatalf("0 of 3: %v", err)
	}
	for _, bad := range []int{0, 4} {
		if _, err := Combine(network, auths, bad, votes(t, []byte{1, 2, 3}, e), t0); err == nil {
			t.Fatalf("threshold %d accepted", bad)
		}
	}
	if _, err := Combine(network, append(auths, auths[0]), 2, nil, t0); err == nil {
		t.Fatal("authority listed twice accepted")
	}
}

func TestCombineIgnoresWhatItCannotCount(t *testing.T) {
	auths := authorities(t, 3)
	e := entry(1, Running, 10, 100)
	good := votes(t, []byte{1}, e)[0]
	unlisted := votes(t, []byte{9}, e)[0]
	forged := votes(t, []byte{2}, e)[0]
	forged.Entries[0].Weight = 1 << 30
	expired, _ := signed(t, 3, document(1, [32]byte{}, e))
	expired.ValidAfter, expired.ValidUntil = t0.Add(-time.Hour), t0 // re-signed with a window that has passed
	expired, _ = signed(t, 3, expired)
	otherNet := votes(t, []byte{2}, e)[0]
	otherNet.NetworkID = [32]byte{1}
	otherNet, _ = signed(t, 2, otherNet)

	_, err := Combine(network, auths, 2, []*Directory{good, unlisted, forged, expired, otherNet, nil}, t0)
	if !errors.Is(err, ErrNoConsensus) {
		t.Fatalf("one countable document of five: %v", err)
	}
	for _, want := range []string{"not listed", "bad signature", "not at", "for network"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	valid := votes(t, []byte{2}, e)[0]
	c, err := Combine(network, auths, 2, []*Directory{good, unlisted, forged, expired, otherNet, valid}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) != 2 || len(c.Ignored) != 4 || c.Relays[0].Weight != 10 {
		t.Fatalf("%d sources, %d ignored, %+v", len(c.Sources), len(c.Ignored), c.Relays)
	}
}

func TestCombineDetectsEquivocation(t *testing.T) {
	auths := authorities(t, 3)
	a := votes(t, []byte{1, 2}, entry(1, Running, 10, 100))
	other, _ := signed(t, 2, document(1, [32]byte{}, entry(1, Running|Guard, 10, 100)))
	// The second document by authority 2 with serial 1 has expired: still proof of equivocation.
	other.ValidAfter, other.ValidUntil = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
	other, _ = signed(t, 2, other)
	_, err := Combine(network, auths, 2, append(a, other), t0)
	var eq *EquivocationError
	if !errors.As(err, &eq) || eq.Authority != auths[1] || eq.Serial != 1 {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), auths[1].String()) {
		t.Fatalf("error does not name the authority: %v", err)
	}
	// The same document twice is not equivocation.
	if _, err := Combine(network, auths, 2, append(a, a[1]), t0); err != nil {
		t.Fatal(err)
	}
}

func TestCombineTakesEachAuthoritysNewest(t *testing.T) {
	auths := authorities(t, 2)
	old1, _ := signed(t, 1, document(1, [32]byte{}, entry(1, Running, 10, 100)))
	h, _ := old1.Hash()
	new1, _ := signed(t, 1, document(2, h, entry(2, Running, 10, 100)))
	d2, _ := signed(t, 2, document(2, [32]byte{2}, entry(2, Running, 10, 100)))
	now := t0.Add(90 * time.Minute) // all three valid
	c, err := Combine(network, auths, 2, []*Directory{new1, old1, d2}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Relays) != 1 || c.Relays[0].Identity != relayID(2) || c.Sources[0].Serial != 2 || c.Sources[1].Serial != 2 {
		t.Fatalf("%+v", c)
	}
}

func TestCombineRules(t *testing.T) {
	auths := authorities(t, 5)
	lists := [][]Entry{
		{entry(1, Running|Guard|Fast, 100, 1000), entry(2, Running, 1, 0), entry(3, Running|Degraded, 50, 900)},
		{entry(1, Running|Guard, 200, 3000), entry(2, Running, 1, 0), entry(3, Running|Degraded, 50, 0)},
		{entry(1, Running|Fast|Degraded, 300, 2000), entry(3, Running, 50, 800)},
		{entry(1, Running|Degraded, 400, 0), entry(2, Running, 1, 0), entry(3, Running|Degraded, 50, 700)},
		{entry(1, Running, 1_000_000, 9), entry(4, Running, 1, 0)},
	}
	// Authority 4 (index 3) lists relay 2 with another descriptor: relay 2 has 2 votes for one digest.
	lists[3][1].Descriptor = digest(99)
	var docs []*Directory
	for i, l := range lists {
		d, _ := signed(t, byte(i+1), document(1, [32]byte{}, l...))
		docs = append(docs, d)
	}
	c, err := Combine(network, auths, 3, docs, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Relays) != 2 {
		t.Fatalf("relays %+v: want 1 and 3 (2 lacks agreement on a descriptor, 4 has one vote)", c.Relays)
	}
	r1, r3 := c.Relays[0], c.Relays[1]
	// Relay 1: five votes. Guard 2, Fast 2, Degraded 2: under the threshold of 3.
	// Weights 100 200 300 400 1000000: median 300. Latencies measured 9 1000 2000 3000: upper median 2000.
	if r1.Flags != Running || r1.Weight != 300 || r1.LatencyMicros != 2000 || r1.Votes != 5 {
		t.Errorf("relay 1: %+v", r1)
	}
	// Relay 3: four votes, Degraded by three of them; latencies measured 700 800 900.
	if r3.Flags != Running|Degraded || r3.LatencyMicros != 800 || r3.Votes != 4 {
		t.Errorf("relay 3: %+v", r3)
	}

	// Two authorities, threshold 1, disagreeing on a descriptor: the relay is left out.
	two := authorities(t, 2)
	a, _ := signed(t, 1, document(1, [32]byte{}, entry(1, Running, 1, 1)))
	other := entry(1, Running, 1, 1)
	other.Descriptor = digest(2)
	b, _ := signed(t, 2, document(1, [32]byte{}, other))
	if c, err := Combine(network, two, 1, []*Directory{a, b}, t0); err != nil || len(c.Relays) != 0 {
		t.Fatalf("ambiguous descriptor: %+v %v", c, err)
	}
	// The lower median of an even count of weights.
	a, _ = signed(t, 1, document(1, [32]byte{}, entry(1, Running, 10, 1)))
	b, _ = signed(t, 2, document(1, [32]byte{}, entry(1, Running, 20, 2)))
	if c, err := Combine(network, two, 2, []*Directory{a, b}, t0); err != nil || c.Relays[0].Weight != 10 || c.Relays[0].LatencyMicros != 2 {
		t.Fatalf("medians of two: %+v %v", c, err)
	}
}
