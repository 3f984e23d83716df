package authority

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

var (
	checkNow     = time.Unix(1_800_000_000, 0)
	checkNetwork = [32]byte{1, 2, 3}
	addrA        = netip.MustParseAddrPort("198.51.100.7:7000")
	addrB        = netip.MustParseAddrPort("[2001:db8::7]:7000")
)

// signedBy returns a descriptor of id's relay at addrA and addrB, changed by edit, signed by id.
func signedBy(t *testing.T, id *keys.Identity, seq uint64, edit func(*descriptor.Descriptor)) []byte {
	t.Helper()
	d := descriptor.Descriptor{
		NetworkID: checkNetwork, ValidFrom: checkNow.Add(-time.Hour), ValidUntil: checkNow.Add(24 * time.Hour),
		Addresses: []netip.AddrPort{addrA, addrB}, Published: checkNow.Add(-time.Minute), Seq: seq,
	}
	if edit != nil {
		edit(&d)
	}
	raw, err := d.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestCheckDescriptor(t *testing.T) {
	id, _ := keys.GenerateIdentity(rand.Reader)
	other, _ := keys.GenerateIdentity(rand.Reader)
	pub := id.Public()
	good := signedBy(t, id, 5, nil)
	forged := signedBy(t, other, 5, nil)
	copy(forged[33:65], pub[:])
	stale := func(d *descriptor.Descriptor) { d.Published = checkNow.Add(-descriptor.MaxAge - time.Second) }
	for _, tc := range []struct {
		name  string
		raw   []byte
		seq   int64
		addrs []netip.AddrPort
		want  reason
	}{
		{"garbage", []byte("not a descriptor"), 5, []netip.AddrPort{addrA}, refusedMalformed},
		{"signed by another key", forged, 5, []netip.AddrPort{addrA}, refusedSignature},
		{"another relay's descriptor", signedBy(t, other, 5, nil), 5, []netip.AddrPort{addrA}, refusedIdentity},
		{"BEP 44 seq is not the descriptor's", good, 6, []netip.AddrPort{addrA}, refusedSeqMismatch},
		{"negative BEP 44 seq", good, -5, []netip.AddrPort{addrA}, refusedSeqMismatch},
		{"another network", signedBy(t, id, 5, func(d *descriptor.Descriptor) { d.NetworkID[0] ^= 1 }), 5, []netip.AddrPort{addrA}, refusedWrongNetwork},
		{"stale", signedBy(t, id, 5, stale), 5, []netip.AddrPort{addrA}, refusedStale},
		{"from the future", signedBy(t, id, 5, func(d *descriptor.Descriptor) { d.Published = checkNow.Add(time.Hour) }), 5, []netip.AddrPort{addrA}, refusedFuture},
		{"onion key expired", signedBy(t, id, 5, func(d *descriptor.Descriptor) { d.ValidUntil = checkNow }), 5, []netip.AddrPort{addrA}, refusedOnionKey},
		{"found elsewhere", good, 5, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.1:7000")}, refusedAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr descriptor.Tracker
			_, why, err := checkDescriptor(tc.raw, tc.seq, pub, tc.addrs, nil, checkNow, checkNetwork, &tr)
			if err == nil || why != tc.want {
				t.Fatalf("got %v (%v), want %v", why, err, tc.want)
			}
			if tr.Len() != 0 {
				t.Fatal("a refused descriptor was recorded in the tracker")
			}
		})
	}

	t.Run("accepted at the preferred address found", func(t *testing.T) {
		var tr descriptor.Tracker
		f, _, err := checkDescriptor(good, 5, pub, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.1:7000"), addrB, addrA}, nil, checkNow, checkNetwork, &tr)
		if err != nil {
			t.Fatal(err)
		}
		if f.addr != addrA || f.desc.Identity != pub || string(f.raw) != string(good) {
			t.Fatalf("accepted at %v: %+v", f.addr, f.desc)
		}
		// The same descriptor again is fine; a lower seq or the same seq with other content is not.
		if _, _, err := checkDescriptor(good, 5, pub, []netip.AddrPort{addrB}, nil, checkNow, checkNetwork, &tr); err != nil {
			t.Fatalf("the same descriptor again: %v", err)
		}
		if _, why, _ := checkDescriptor(signedBy(t, id, 4, nil), 4, pub, []netip.AddrPort{addrA}, nil, checkNow, checkNetwork, &tr); why != refusedOldSeq {
			t.Fatalf("a lower seq: %v", why)
		}
		changed := signedBy(t, id, 5, func(d *descriptor.Descriptor) { d.Bandwidth = 1 })
		if _, why, _ := checkDescriptor(changed, 5, pub, []netip.AddrPort{addrA}, nil, checkNow, checkNetwork, &tr); why != refusedSeqReused {
			t.Fatalf("the same seq with other content: %v", why)
		}
		if seq, _ := tr.Seq(pub); seq != 5 {
			t.Fatalf("tracker holds seq %d", seq)
		}
	})
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range numReasons {
		if r.String() == "" || seen[r.String()] {
			t.Fatalf("reason %d is named %q", r, r.String())
		}
		seen[r.String()] = true
	}
}

// A relay behind a NAT is found registered with a rendezvous, from its NAT's address (whose port a
// symmetric NAT changes): it is accepted only if its descriptor names that rendezvous.
func TestCheckDescriptorBehindNAT(t *testing.T) {
	id, _ := keys.GenerateIdentity(rand.Reader)
	rv := netip.MustParseAddrPort("203.0.113.9:7000")
	named := func(d *descriptor.Descriptor) {
		d.Addresses = []netip.AddrPort{addrA}
		d.Rendezvous = []descriptor.Rendezvous{{LinkKey: keys.StaticPublic{7}, Addr: rv}}
	}
	raw := signedBy(t, id, 5, named)
	registeredFrom := []netip.AddrPort{netip.AddrPortFrom(addrA.Addr(), 41234)}
	var tr descriptor.Tracker
	f, _, err := checkDescriptor(raw, 5, id.Public(), registeredFrom, []netip.AddrPort{rv}, checkNow, checkNetwork, &tr)
	if err != nil || f.addr != addrA {
		t.Fatalf("NAT'd relay registered with the rendezvous it names: %v (addr %v)", err, f.addr)
	}
	for _, tc := range []struct {
		name  string
		addrs []netip.AddrPort
		via   []netip.AddrPort
	}{
		{"not found through a rendezvous", registeredFrom, nil},
		{"registered with a rendezvous it does not name", registeredFrom, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.8:7000")}},
		{"registered from another address", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41234")}, []netip.AddrPort{rv}},
	} {
		var tr descriptor.Tracker
		if _, why, _ := checkDescriptor(raw, 5, id.Public(), tc.addrs, tc.via, checkNow, checkNetwork, &tr); why != refusedAddress {
			t.Errorf("%s: reason %v, want %v", tc.name, why, refusedAddress)
		}
	}
}
