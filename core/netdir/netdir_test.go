package netdir

import (
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

func testRelay(i int) Relay {
	var id keys.IdentityPublic
	id[0], id[1] = 0x5A, byte(i)
	return Relay{Identity: id, Name: "r" + string(rune('0'+i)), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000), Flags: Running}
}

func TestFromListChecksEveryRelay(t *testing.T) {
	a, b := testRelay(1), testRelay(2)
	noAddr := testRelay(3)
	noAddr.Addr = netip.AddrPort{}
	_, err := FromList([]Relay{a, b, a, noAddr})
	if err == nil || !strings.Contains(err.Error(), "identity listed twice") || !strings.Contains(err.Error(), "no address") {
		t.Fatalf("err = %v, want both problems", err)
	}
	d, err := FromList([]Relay{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := d.ByID(b.Identity); !ok || got.Name != b.Name || d.Len() != 2 || d.FromDirectory() || len(d.Sources()) != 0 {
		t.Fatalf("ByID(b) = %v %v; len %d", got, ok, d.Len())
	}
	if _, ok := d.ByID(testRelay(9).Identity); ok {
		t.Fatal("an unknown identity was found")
	}
	if d.Fetched().IsZero() {
		t.Fatal("no time")
	}
}

func TestNetDirDoesNotChange(t *testing.T) {
	in := []Relay{testRelay(1), testRelay(2)}
	d, err := FromList(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0].Name = "changed" // the caller's slice is not the snapshot's
	rs := d.Relays()
	rs[1].Name = "changed too" // nor is what Relays returns
	adj := d.Adjust(func(r *Relay) { r.Flags |= Guard })
	for _, r := range d.Relays() {
		if strings.HasPrefix(r.Name, "changed") || r.Flags.Has(Guard) {
			t.Fatalf("the snapshot changed: %v %v", r, r.Flags)
		}
	}
	if r, _ := adj.ByID(in[1].Identity); !r.Flags.Has(Guard|Running) || adj.Fetched() != d.Fetched() {
		t.Fatalf("adjusted: %v %v", r, r.Flags)
	}
}

// TestFromConsensus: each relay of the consensus with a matching descriptor, with the descriptor's
// keys and attributes and the consensus's flags and weight; one without is a problem, not an error.
func TestFromConsensus(t *testing.T) {
	now := time.Now()
	mk := func(i int) (*descriptor.Descriptor, [32]byte) {
		id, _ := keys.GenerateIdentity(rand.Reader)
		ok, _ := keys.GenerateStatic(rand.Reader)
		lk, _ := keys.GenerateStatic(rand.Reader)
		d := &descriptor.Descriptor{Identity: id.Public(), OnionKey: ok.Public(), LinkKey: lk.Public(),
			ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour), Country: "DE", Region: "eu", IPv6: i == 0,
			Addresses: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000)},
			Exit:      exitports.Summary{TCP: []exitports.Range{{Lo: 80, Hi: 80}}}, Bandwidth: 1000, Published: now, Seq: 1, Software: "test",
			Rendezvous: []descriptor.Rendezvous{{LinkKey: lk.Public(), Addr: netip.MustParseAddrPort("192.0.2.1:7000")}},
		}
		var dg [32]byte
		dg[0], dg[1] = 0xD1, byte(i)
		return d, dg
	}
	d0, g0 := mk(0)
	d1, g1 := mk(1)
	_, g2 := mk(2)
	cons := &directory.Consensus{Sources: []directory.Source{{Serial: 1}, {Serial: 2}}, Relays: []directory.Relay{
		{Entry: directory.Entry{Identity: d0.Identity, Descriptor: g0, Flags: directory.Running | directory.Exit, Weight: 7}},
		{Entry: directory.Entry{Identity: d1.Identity, Descriptor: g1, Flags: directory.Running | directory.Guard}},
		{Entry: directory.Entry{Identity: keys.IdentityPublic{1}, Descriptor: g2, Flags: directory.Running}},
		{Entry: directory.Entry{Identity: keys.IdentityPublic{2}, Descriptor: g0, Flags: directory.Running}}, // another's descriptor
	}}
	dir, problems, err := FromConsensus(cons, map[[32]byte]*descriptor.Descriptor{g0: d0, g1: d1})
	if err != nil {
		t.Fatal(err)
	}
	if dir.Len() != 2 || len(problems) != 2 || len(dir.Sources()) != 2 || !dir.FromDirectory() {
		t.Fatalf("%d relays, problems %v, %d sources", dir.Len(), problems, len(dir.Sources()))
	}
	r, ok := dir.ByID(d0.Identity)
	if !ok || r.Flags != Running|Exit || r.Weight != 7 || r.Onion != d0.OnionKey || r.LinkKey != d0.LinkKey ||
		r.Addr != d0.Addresses[0] || !r.IPv6 || r.Country != "DE" || r.Region != "eu" || r.Bandwidth != 1000 ||
		!r.IsExit() || len(r.Rendezvous) != 1 || r.Name != d0.Identity.String()[:8] {
		t.Fatalf("relay %+v", r)
	}
	if _, _, err := FromConsensus(cons, nil); err == nil {
		t.Fatal("a consensus with no descriptor made a NetDir")
	}
}

func TestFlagsString(t *testing.T) {
	if s := (Running | Guard).String(); s != "Running|Guard" {
		t.Fatal(s)
	}
	if s := Flags(0).String(); s != "none" {
		t.Fatal(s)
	}
}
