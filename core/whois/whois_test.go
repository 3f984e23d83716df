package whois

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

func TestRoundTrip(t *testing.T) {
	nonce := [NonceLen]byte{1, 2, 3}
	net, id := [32]byte{9}, keys.IdentityPublic{7, 7}
	req := Request(nonce)
	if !IsWhois(req) || len(req) <= ResponseLen {
		t.Fatalf("a request of %d bytes for a %d-byte answer amplifies", len(req), ResponseLen)
	}
	resp, err := Answer(req, net, id)
	if err != nil {
		t.Fatal(err)
	}
	gotNet, gotID, err := ParseAnswer(resp, nonce)
	if err != nil || gotNet != net || gotID != id {
		t.Fatalf("%v %v %v", gotNet, gotID, err)
	}
	if _, _, err := ParseAnswer(resp, [NonceLen]byte{4}); err == nil {
		t.Fatal("an answer to another nonce was accepted")
	}
	if _, err := Answer(resp, net, id); err == nil {
		t.Fatal("an answer was answered")
	}
	short := req[:RequestLen-1]
	if _, err := Answer(short, net, id); err == nil {
		t.Fatal("a short request was answered")
	}
	bad := bytes.Clone(req)
	bad[RequestLen-1] = 1
	if _, err := Answer(bad, net, id); err == nil {
		t.Fatal("a request with non-zero padding was answered")
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(Request([NonceLen]byte{1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := Answer(b, [32]byte{}, keys.IdentityPublic{})
		if err == nil && len(resp) >= len(b) {
			t.Fatalf("%d-byte answer to a %d-byte request", len(resp), len(b))
		}
		ParseAnswer(b, [NonceLen]byte{})
	})
}

func TestRegisteredPages(t *testing.T) {
	var regs []Registration
	for i := range 45 {
		r := Registration{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 40000)}
		r.Identity[0], r.Identity[1] = byte(200-i), byte(i) // not in identity order
		regs = append(regs, r)
	}
	regs = append(regs, Registration{Identity: keys.IdentityPublic{1}}) // no address: left out
	nonce := [NonceLen]byte{5}
	var all []Registration
	for page := 0; ; page++ {
		req := RegisteredRequest(nonce, page)
		if !IsRegisteredRequest(req) || IsRegisteredRequest(Request(nonce)) {
			t.Fatal("request kinds confused")
		}
		if _, err := Answer(req, [32]byte{}, keys.IdentityPublic{}); err == nil {
			t.Fatal("a registered-relays request was answered as whois")
		}
		resp, err := AnswerRegistered(req, regs)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp) >= len(req) {
			t.Fatalf("%d-byte answer to a %d-byte request", len(resp), len(req))
		}
		got, pages, list, err := ParseRegistered(resp, nonce)
		if err != nil || got != page || pages != 3 {
			t.Fatalf("page %d: got page %d of %d: %v", page, got, pages, err)
		}
		all = append(all, list...)
		if page == pages-1 {
			break
		}
	}
	if len(all) != 45 {
		t.Fatalf("%d entries over all pages, want 45", len(all))
	}
	for i := 1; i < len(all); i++ {
		if bytes.Compare(all[i-1].Identity[:], all[i].Identity[:]) >= 0 {
			t.Fatal("entries not sorted by identity across pages")
		}
	}
	resp, _ := AnswerRegistered(RegisteredRequest(nonce, 0), regs)
	if _, _, _, err := ParseRegistered(resp, [NonceLen]byte{6}); err == nil {
		t.Fatal("answer to another nonce accepted")
	}
	if _, _, _, err := ParseRegistered(resp[:len(resp)-1], nonce); err == nil {
		t.Fatal("truncated answer accepted")
	}
	empty, _ := AnswerRegistered(RegisteredRequest(nonce, 0), nil)
	if _, pages, list, err := ParseRegistered(empty, nonce); err != nil || pages != 1 || len(list) != 0 {
		t.Fatalf("empty list: %d pages, %d entries, %v", pages, len(list), err)
	}
}

func FuzzRegistered(f *testing.F) {
	regs := []Registration{{Identity: keys.IdentityPublic{1}, Addr: netip.MustParseAddrPort("198.51.100.1:1")}}
	resp, _ := AnswerRegistered(RegisteredRequest([NonceLen]byte{}, 0), regs)
	f.Add(resp)
	f.Add(RegisteredRequest([NonceLen]byte{}, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if out, err := AnswerRegistered(b, regs); err == nil && len(out) >= len(b) {
			t.Fatalf("%d-byte answer to a %d-byte request", len(out), len(b))
		}
		ParseRegistered(b, [NonceLen]byte{})
	})
}
