package dnssplit

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

var resolver = netip.MustParseAddr("10.99.0.1")

// answer builds the IPv4 packet the tunnel resolver sends: an answer to name with the records.
func answer(t testing.TB, from netip.Addr, sport uint16, name string, rrs ...string) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r := new(dns.Msg)
	r.SetReply(q)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Answer = append(r.Answer, rr)
	}
	payload, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, 17
	copy(pkt[12:16], from.AsSlice())
	copy(pkt[16:20], net.IPv4(10, 99, 0, 2).To4())
	binary.BigEndian.PutUint16(pkt[20:], sport)
	binary.BigEndian.PutUint16(pkt[22:], 40000)
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	return pkt
}

func TestMatch(t *testing.T) {
	m, err := NewMatcher([]string{"Bank.Example", "game.test."})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"bank.example": true, "www.bank.example.": true, "WWW.BANK.EXAMPLE": true, "a.b.game.test": true,
		"notbank.example": false, "example": false, "bank.example.evil": false, "test.": false, ".": false,
	} {
		if m.Match(name) != want {
			t.Errorf("Match(%q) = %v", name, !want)
		}
	}
	if _, err := NewMatcher([]string{"ok.example", "", ".", "bad name", "*.wild.example", "a..b"}); err == nil {
		t.Error("bad names taken")
	} else {
		for _, w := range []string{`""`, `"."`, `"bad name"`, `"*.wild.example"`, `"a..b"`} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not name %s: %v", w, err)
			}
		}
	}
}

func TestAddrs(t *testing.T) {
	m, _ := NewMatcher([]string{"bank.example"})
	got := m.Addrs(answer(t, resolver, 53, "www.bank.example",
		"www.bank.example. 60 IN CNAME cdn.provider.net.", "cdn.provider.net. 60 IN A 192.0.2.7",
		"cdn.provider.net. 60 IN AAAA 2001:db8::7"), resolver)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")}
	if !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want %v", got, want)
	}
	for name, pkt := range map[string][]byte{
		"another name":       answer(t, resolver, 53, "www.other.example", "www.other.example. 60 IN A 192.0.2.8"),
		"another server":     answer(t, netip.MustParseAddr("192.0.2.53"), 53, "bank.example", "bank.example. 60 IN A 192.0.2.8"),
		"another port":       answer(t, resolver, 5353, "bank.example", "bank.example. 60 IN A 192.0.2.8"),
		"truncated":          answer(t, resolver, 53, "bank.example", "bank.example. 60 IN A 192.0.2.8")[:40],
		"empty":              nil,
		"not IP":             []byte{0x12, 0x34},
		"the unspecified IP": answer(t, resolver, 53, "bank.example", "bank.example. 60 IN A 0.0.0.0"),
	} {
		if got := m.Addrs(pkt, resolver); len(got) > 0 {
			t.Errorf("%s: %v", name, got)
		}
	}
	frag := answer(t, resolver, 53, "bank.example", "bank.example. 60 IN A 192.0.2.8")
	frag[6] = 0x20 // more fragments
	if got := m.Addrs(frag, resolver); len(got) > 0 {
		t.Errorf("a fragment: %v", got)
	}
}

func FuzzAddrs(f *testing.F) {
	m, _ := NewMatcher([]string{"bank.example"})
	f.Add(answer(f, resolver, 53, "bank.example", "bank.example. 60 IN A 192.0.2.8"))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, a := range m.Addrs(pkt, resolver) {
			if !a.IsValid() {
				t.Fatalf("invalid address from %x", pkt)
			}
		}
		m.Addrs(pkt, netip.MustParseAddr("fd00::1"))
	})
}

// Every packet out of the tunnel passes Addrs: one that is not a DNS answer costs no allocation.
func TestAddrsAllocatesNothingForOtherPackets(t *testing.T) {
	m, _ := NewMatcher([]string{"bank.example"})
	tcp := answer(t, resolver, 53, "bank.example", "bank.example. 60 IN A 192.0.2.8")
	tcp[9] = 6
	other := answer(t, netip.MustParseAddr("192.0.2.9"), 443, "x.example")
	if n := testing.AllocsPerRun(100, func() { m.Addrs(tcp, resolver); m.Addrs(other, resolver) }); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
