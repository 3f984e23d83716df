package descriptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

var (
	network = [32]byte{1, 2, 3}
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func identity(t testing.TB, seed byte) *keys.Identity {
	t.Helper()
	id, err := keys.GenerateIdentity(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func summary(t testing.TB, s string) exitports.Summary {
	t.Helper()
	sum, err := exitports.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// example returns a descriptor using every field, published at t0.
func example(t testing.TB) *Descriptor {
	fam := []keys.IdentityPublic{identity(t, 9).Public(), identity(t, 8).Public()}
	if bytes.Compare(fam[0][:], fam[1][:]) > 0 {
		fam[0], fam[1] = fam[1], fam[0]
	}
	return &Descriptor{
		NetworkID:  network,
		OnionKey:   keys.StaticPublic{0xaa, 1},
		ValidFrom:  t0.Add(-24 * time.Hour),
		ValidUntil: t0.Add(13 * 24 * time.Hour),
		LinkKey:    keys.StaticPublic{0xbb, 2},
		Addresses: []netip.AddrPort{
			netip.MustParseAddrPort("198.51.100.7:7000"),
			netip.MustParseAddrPort("[2001:db8::7]:7000"),
		},
		Exit:      summary(t, "tcp=22,80,443,6881-6889 udp=53"),
		Family:    fam,
		Country:   "DE",
		Region:    "Frankfurt",
		Bandwidth: 12_500_000,
		Software:  "meshvpn/0.1.0",
		Name:      "berlin-1",
		Rendezvous: []Rendezvous{
			{LinkKey: keys.StaticPublic{0xcc, 3}, Addr: netip.MustParseAddrPort("203.0.113.9:7000")},
			{LinkKey: keys.StaticPublic{0xdd, 4}, Addr: netip.MustParseAddrPort("[2001:db8::9]:7001")},
		},
		Published: t0,
		Seq:       1,
	}
}

func sign(t testing.TB, d *Descriptor, seed byte) []byte {
	t.Helper()
	b, err := d.Sign(identity(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	exit := example(t)
	relay := example(t)
	relay.Exit = exitports.Summary{}
	relay.Family = nil
	relay.Country, relay.Region, relay.Software = "", "", ""
	relay.Rendezvous = nil
	relay.Addresses = relay.Addresses[1:]
	natted := example(t)
	natted.Exit = exitports.Summary{}
	natted.Rendezvous = natted.Rendezvous[1:]
	for name, d := range map[string]*Descriptor{"exit": exit, "relay": relay, "relay behind a NAT": natted} {
		b := sign(t, d, 1)
		if len(b) > MaxSize {
			t.Fatalf("%s: %d bytes", name, len(b))
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("%s: parsed\n%+v\nwant\n%+v", name, got, d)
		}
		if again, err := got.Encode(); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encodes differently: %v", name, err)
		}
		if got.IsExit() != (name == "exit") {
			t.Fatalf("%s: IsExit %v", name, got.IsExit())
		}
		if err := got.Check(t0, network); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestEveryBitFlipIsRefused(t *testing.T) {
	b := sign(t, example(t), 1)
	for i := range len(b) * 8 {
		m := bytes.Clone(b)
		m[i/8] ^= 1 << (i % 8)
		if d, err := Parse(m); err == nil {
			t.Fatalf("bit %d flipped: accepted %+v", i, d)
		}
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b[:len(b)-1]); err == nil {
		t.Fatal("truncated descriptor accepted")
	}
	if _, err := Parse(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestSignatureIsTheIdentitys(t *testing.T) {
	d := example(t)
	b := sign(t, d, 1)
	// Another key's signature over the same body, under the first key's identity.
	copy(b[len(b)-sigLen:], identity(t, 2).Sign(signedMessage(b[:len(b)-sigLen])))
	if _, err := Parse(b); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature by another key: %v", err)
	}
	// A signature of the body without the domain-separation prefix.
	copy(b[len(b)-sigLen:], identity(t, 1).Sign(b[:len(b)-sigLen]))
	if _, err := Parse(b); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature without context: %v", err)
	}
}

func TestCheck(t *testing.T) {
	d := example(t)
	if _, err := Parse(sign(t, d, 1)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		now     time.Time
		network [32]byte
		want    error
	}{
		{"now", t0, network, nil},
		{"clock 10 min behind", t0.Add(-MaxClockSkew), network, nil},
		{"future", t0.Add(-MaxClockSkew - time.Second), network, ErrFuture},
		{"24 h old", t0.Add(MaxAge), network, nil},
		{"stale", t0.Add(MaxAge + time.Second), network, ErrStale},
		{"wrong network", t0, [32]byte{9}, ErrWrongNetwork},
	} {
		if err := d.Check(c.now, c.network); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	expired := example(t)
	expired.ValidFrom, expired.ValidUntil = t0.Add(-14*24*time.Hour), t0
	notYet := example(t)
	notYet.ValidFrom, notYet.ValidUntil = t0.Add(time.Second), t0.Add(7*24*time.Hour)
	for name, d := range map[string]*Descriptor{"expired": expired, "not yet valid": notYet} {
		got, err := Parse(sign(t, d, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Check(t0, network); !errors.Is(err, ErrOnionKey) {
			t.Errorf("%s onion key: %v", name, err)
		}
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	d := example(t)
	d.Seq = 5
	first := sign(t, d, 1)
	accept := func(b []byte) error {
		t.Helper()
		d, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Accept(d)
	}
	if err := accept(first); err != nil {
		t.Fatal(err)
	}
	if err := accept(first); err != nil {
		t.Fatalf("same descriptor again: %v", err)
	}
	d.Bandwidth++
	if err := accept(sign(t, d, 1)); !errors.Is(err, ErrSeqReused) {
		t.Fatalf("changed content, same seq: %v", err)
	}
	d.Seq = 4
	if err := accept(sign(t, d, 1)); !errors.Is(err, ErrOldSeq) {
		t.Fatalf("lower seq: %v", err)
	}
	d.Seq = 6
	if err := accept(sign(t, d, 1)); err != nil {
		t.Fatalf("higher seq: %v", err)
	}
	if err := accept(first); !errors.Is(err, ErrOldSeq) {
		t.Fatalf("replay of the first: %v", err)
	}
	other := example(t)
	other.Seq = 1
	if err := accept(sign(t, other, 2)); err != nil {
		t.Fatalf("another relay: %v", err)
	}
	if seq, ok := tr.Seq(identity(t, 1).Public()); !ok || seq != 6 || tr.Len() != 2 {
		t.Fatalf("seq %d %v, %d relays", seq, ok, tr.Len())
	}
	tr.Forget(identity(t, 1).Public())
	if err := accept(first); err != nil || tr.Len() != 2 {
		t.Fatalf("after Forget: %v", err)
	}
}

// longSummary returns a canonical summary of n single TCP ports.
func longSummary(t testing.TB, n int) exitports.Summary {
	var ports []string
	for i := range n {
		ports = append(ports, strconv.Itoa(10000+2*i))
	}
	return summary(t, "tcp="+strings.Join(ports, ",")+" udp=53")
}

func TestSizeLimit(t *testing.T) {
	d := example(t)
	d.Addresses = nil
	for i := range MaxAddresses {
		d.Addresses = append(d.Addresses, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 65535))
	}
	d.Family = nil
	for i := range MaxFamily {
		d.Family = append(d.Family, keys.IdentityPublic{byte(i + 1)})
	}
	d.Region = strings.Repeat("r", MaxRegionLen)
	d.Software = strings.Repeat("s", MaxSoftwareLen)
	d.Name = strings.Repeat("n", MaxNameLen)
	d.Rendezvous = nil
	for i := range MaxRendezvous {
		a := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: 1, 15: byte(i + 1)}), 65535)
		d.Rendezvous = append(d.Rendezvous, Rendezvous{LinkKey: keys.StaticPublic{0xee, byte(i + 1)}, Addr: a})
	}
	fitted, refused := 0, 0
	for n := 1; n < 100; n++ {
		d.Exit = longSummary(t, n)
		b, err := d.Sign(identity(t, 1))
		switch {
		case errors.Is(err, ErrTooLarge):
			refused++
		case err != nil:
			t.Fatal(err)
		case len(b) > MaxSize:
			t.Fatalf("%d ports: signed %d bytes", n, len(b))
		default:
			if _, err := Parse(b); err != nil {
				t.Fatalf("%d ports: %v", n, err)
			}
			fitted++
		}
	}
	if fitted == 0 || refused == 0 {
		t.Fatalf("%d fitted, %d refused: the test does not reach the limit", fitted, refused)
	}
	// The largest descriptor without an exit summary leaves this much room for one: 155 bytes, 24
	// scattered five-digit ports (docs/protocol.md, section 9).
	d.Exit = exitports.Summary{}
	b, err := d.Sign(identity(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if room := MaxSize - len(b); room < 155 {
		t.Fatalf("only %d bytes left for an exit summary", room)
	}
	if _, err := Parse(make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	d := example(t)
	d.Identity = d.Family[0]
	d.ValidUntil = d.ValidFrom
	d.Published = t0.Add(time.Millisecond)
	d.Addresses = append(d.Addresses,
		netip.MustParseAddrPort("0.0.0.0:1"),
		netip.MustParseAddrPort("[ff02::1]:1"),
		netip.MustParseAddrPort("[fe80::1%eth0]:1"),
		netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"),
		netip.MustParseAddrPort("192.0.2.1:0"),
		d.Addresses[0])
	d.Family = append(d.Family, d.Family[0])
	d.Country = "de"
	d.Region = "tab\there"
	d.Software = strings.Repeat("x", MaxSoftwareLen+1)
	d.Seq = 1 << 63
	d.Exit = exitports.Summary{TCP: []exitports.Range{{Lo: 80, Hi: 80}, {Lo: 81, Hi: 81}}}
	d.Rendezvous = append(d.Rendezvous,
		Rendezvous{LinkKey: d.LinkKey, Addr: netip.MustParseAddrPort("203.0.113.10:1")},
		Rendezvous{LinkKey: d.Rendezvous[0].LinkKey, Addr: netip.MustParseAddrPort("0.0.0.0:1")},
		Rendezvous{LinkKey: keys.StaticPublic{0xff}, Addr: d.Rendezvous[1].Addr})
	err := d.Validate()
	if !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	for _, want := range []string{"window", "whole second", "addresses, want", "unspecified", "multicast",
		"zone", "IPv4 address in IPv6 form", "port 0", "listed twice", "not canonical", "relay itself",
		"not sorted", "country", "region", "software", "seq", "5 rendezvous, more than 2",
		"rendezvous 2 is the relay itself", "rendezvous 3: 0.0.0.0 is unspecified",
		"rendezvous " + d.Rendezvous[0].LinkKey.String() + " listed twice",
		"rendezvous address [2001:db8::9]:7001 listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in: %v", want, err)
		}
	}
	if _, err := d.Sign(identity(t, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Sign of an invalid descriptor: %v", err)
	}
}

// resign replaces b's signature with a valid one by seed 1, so that a test reaches the decoder's
// other checks.
func resign(t *testing.T, b []byte) []byte {
	body := b[:len(b)-sigLen]
	return append(bytes.Clone(body), identity(t, 1).Sign(signedMessage(body))...)
}

func TestParseRefusesWhatSignNeverWrites(t *testing.T) {
	d := example(t)
	b := sign(t, d, 1)
	addrs := fixedLen
	family := addrs + 1 + 7 + 19
	summaryAt := family + 1 + 2*32
	// The example's two rendezvous, an IPv4 one (32 + 7 bytes) and an IPv6 one (32 + 19), end the body.
	rv := len(b) - sigLen - (1 + 39 + 51)
	mutate := func(f func(b []byte) []byte) []byte { return resign(t, f(bytes.Clone(b))) }
	cases := map[string][]byte{
		"version 2": mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"byte before the signature": mutate(func(b []byte) []byte {
			return append(b[:len(b)-sigLen:len(b)-sigLen], append([]byte{0}, b[len(b)-sigLen:]...)...)
		}),
		"zero addresses":    mutate(func(b []byte) []byte { b[addrs] = 0; return b }),
		"address family 5":  mutate(func(b []byte) []byte { b[addrs+1] = 5; return b }),
		"unspecified IPv4":  mutate(func(b []byte) []byte { copy(b[addrs+2:], []byte{0, 0, 0, 0}); return b }),
		"port 0":            mutate(func(b []byte) []byte { b[addrs+6], b[addrs+7] = 0, 0; return b }),
		"unsorted family":   mutate(func(b []byte) []byte { swap32(b[family+1:], b[family+33:]); return b }),
		"duplicate family":  mutate(func(b []byte) []byte { copy(b[family+33:family+65], b[family+1:]); return b }),
		"nine family":       mutate(func(b []byte) []byte { b[family] = 9; return b }),
		"onion window zero": mutate(func(b []byte) []byte { copy(b[105:113], b[97:105]); return b }),
		"time past 9999":    mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[145:], MaxUnix+1); return b }),
		"seq 2^63":          mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[153:], 1<<63); return b }),
		"summary says nothing": mutate(func(b []byte) []byte {
			return splice(b, summaryAt, "tcp=none udp=none")
		}),
		"summary not canonical": mutate(func(b []byte) []byte {
			return splice(b, summaryAt, "tcp=80,81 udp=53")
		}),
		"summary length past the end": mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[summaryAt:], 900)
			return b
		}),
		"three rendezvous":            mutate(func(b []byte) []byte { b[rv] = 3; return b }),
		"rendezvous count short":      mutate(func(b []byte) []byte { b[rv] = 1; return b }),
		"rendezvous is the relay":     mutate(func(b []byte) []byte { copy(b[rv+1:rv+33], b[113:145]); return b }),
		"rendezvous key twice":        mutate(func(b []byte) []byte { copy(b[rv+40:rv+72], b[rv+1:rv+33]); return b }),
		"rendezvous address family 5": mutate(func(b []byte) []byte { b[rv+33] = 5; return b }),
		"rendezvous port 0":           mutate(func(b []byte) []byte { b[rv+38], b[rv+39] = 0, 0; return b }),
		"rendezvous IPv4 in IPv6 form": mutate(func(b []byte) []byte {
			copy(b[rv+73:rv+89], netip.MustParseAddr("::ffff:203.0.113.10").AsSlice())
			return b
		}),
	}
	for name, m := range cases {
		if _, err := Parse(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRendezvousLayout pins the encoding docs/protocol.md gives: after the software and name strings, a count
// and then each rendezvous as link key · family · address · port, just before the signature.
func TestRendezvousLayout(t *testing.T) {
	d := example(t)
	b := sign(t, d, 1)
	want := []byte{2}
	want = append(want, d.Rendezvous[0].LinkKey[:]...)
	want = append(want, 4, 203, 0, 113, 9, 0x1b, 0x58)
	want = append(want, d.Rendezvous[1].LinkKey[:]...)
	want = append(want, 6)
	want = append(want, netip.MustParseAddr("2001:db8::9").AsSlice()...)
	want = append(want, 0x1b, 0x59)
	body := b[:len(b)-sigLen]
	if !bytes.HasSuffix(body, want) {
		t.Fatalf("body ends %x, want %x", body[len(body)-len(want):], want)
	}
	name := len(body) - len(want) - 1 - len(d.Name)
	software := name - 1 - len(d.Software)
	if body[software] != byte(len(d.Software)) || string(body[software+1:software+1+len(d.Software)]) != d.Software ||
		body[name] != byte(len(d.Name)) || string(body[name+1:name+1+len(d.Name)]) != d.Name {
		t.Fatalf("the rendezvous do not follow the software and name strings")
	}
	d.Rendezvous = nil
	if b := sign(t, d, 1); b[len(b)-sigLen-1] != 0 {
		t.Fatalf("no rendezvous: count byte %d", b[len(b)-sigLen-1])
	}
}

func swap32(a, b []byte) {
	var t [32]byte
	copy(t[:], a)
	copy(a[:32], b)
	copy(b[:32], t[:])
}

// splice replaces the length-prefixed summary at off with s.
func splice(b []byte, off int, s string) []byte {
	n := int(binary.BigEndian.Uint16(b[off:]))
	out := append(bytes.Clone(b[:off]), byte(len(s)>>8), byte(len(s)))
	out = append(out, s...)
	return append(out, b[off+2+n:]...)
}

// The name is a label of a few safe characters: it round-trips, and anything else is refused.
func TestName(t *testing.T) {
	d := example(t)
	got, err := Parse(sign(t, d, 1))
	if err != nil || got.Name != "berlin-1" {
		t.Fatalf("name after a round trip: %q %v", got.Name, err)
	}
	for _, bad := range []string{"has space", strings.Repeat("n", MaxNameLen+1), "ümlaut", "tab\t", "semi;colon"} {
		d := example(t)
		d.Name = bad
		if _, err := d.Sign(identity(t, 1)); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	d.Name = ""
	if _, err := Parse(sign(t, d, 1)); err != nil {
		t.Fatalf("no name: %v", err)
	}
}
