package whois

import (
	"bytes"
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
