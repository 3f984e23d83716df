package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateIdentityDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, 32)
	k, err := GenerateIdentity(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if got := k.Public(); !bytes.Equal(got[:], want) {
		t.Errorf("Public() = %x, want %x", got, want)
	}
	if !bytes.Equal(k.Seed(), seed) {
		t.Errorf("Seed() = %x, want %x", k.Seed(), seed)
	}
	k2, err := GenerateIdentity(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if k2.Public() != k.Public() {
		t.Error("same reader bytes gave different keys")
	}
}

func TestIdentityRFC8032(t *testing.T) {
	// RFC 8032, section 7.1, TEST 1.
	seed := mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub := mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	sig := mustHex(t, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
	k, err := IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public(); !bytes.Equal(got[:], pub) {
		t.Errorf("Public() = %x, want %x", got, pub)
	}
	if got := k.Sign(nil); !bytes.Equal(got, sig) {
		t.Errorf("Sign(nil) = %x, want %x", got, sig)
	}
}

func TestGenerateShortRead(t *testing.T) {
	short := bytes.NewReader(make([]byte, 31))
	if _, err := GenerateIdentity(short); err == nil {
		t.Error("GenerateIdentity: no error for a 31-byte reader")
	}
	short = bytes.NewReader(make([]byte, 31))
	if _, err := GenerateStatic(short); err == nil {
		t.Error("GenerateStatic: no error for a 31-byte reader")
	}
}

func TestFromBytesLength(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := IdentityFromSeed(make([]byte, n)); err == nil {
			t.Errorf("IdentityFromSeed: no error for %d bytes", n)
		}
		if _, err := StaticFromBytes(make([]byte, n)); err == nil {
			t.Errorf("StaticFromBytes: no error for %d bytes", n)
		}
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	id, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := id.Seed()
	orig := bytes.Clone(s)
	s[0] ^= 1
	if !bytes.Equal(id.Seed(), orig) {
		t.Error("changing Seed() result changed the identity key")
	}

	st, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Bytes()
	orig = bytes.Clone(b)
	b[0] ^= 1
	if !bytes.Equal(st.Bytes(), orig) {
		t.Error("changing Bytes() result changed the static key")
	}
}

func TestSignVerify(t *testing.T) {
	k, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("relay descriptor")
	sig := k.Sign(msg)
	if len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want 64", len(sig))
	}
	pub := k.Public()
	if !pub.Verify(msg, sig) {
		t.Fatal("valid signature rejected")
	}

	flippedSig := bytes.Clone(sig)
	flippedSig[10] ^= 0x01
	flippedMsg := bytes.Clone(msg)
	flippedMsg[0] ^= 0x80
	tests := []struct {
		name string
		pub  IdentityPublic
		msg  []byte
		sig  []byte
	}{
		{"flipped signature bit", pub, msg, flippedSig},
		{"flipped message bit", pub, flippedMsg, sig},
		{"wrong key", other.Public(), msg, sig},
		{"short signature", pub, msg, sig[:63]},
		{"long signature", pub, msg, append(bytes.Clone(sig), 0)},
		{"nil signature", pub, msg, nil},
		{"zero key", IdentityPublic{}, msg, sig},
	}
	for _, tt := range tests {
		if tt.pub.Verify(tt.msg, tt.sig) {
			t.Errorf("%s: Verify = true, want false", tt.name)
		}
	}
}

func TestX25519RFC7748(t *testing.T) {
	// RFC 7748, section 6.1.
	alicePriv := mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	alicePub := mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPub := StaticPublic(mustHex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	shared := mustHex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

	alice, err := GenerateStatic(bytes.NewReader(alicePriv))
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.Public(); !bytes.Equal(got[:], alicePub) {
		t.Errorf("Public() = %x, want %x", got, alicePub)
	}
	if !bytes.Equal(alice.Bytes(), alicePriv) {
		t.Errorf("Bytes() = %x, want %x", alice.Bytes(), alicePriv)
	}
	got, err := alice.ECDH(bobPub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:], shared) {
		t.Errorf("ECDH = %x, want %x", got, shared)
	}
	if !bytes.Equal(alice.PrivateKey().Bytes(), alicePriv) {
		t.Error("PrivateKey() does not hold the key")
	}
}

func TestECDHSymmetric(t *testing.T) {
	a, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ab, err := a.ECDH(b.Public())
	if err != nil {
		t.Fatal(err)
	}
	ba, err := b.ECDH(a.Public())
	if err != nil {
		t.Fatal(err)
	}
	if ab != ba {
		t.Errorf("a.ECDH(B) = %x, b.ECDH(A) = %x", ab, ba)
	}
	if ab == ([32]byte{}) {
		t.Error("shared secret is zero")
	}
}

func TestECDHLowOrder(t *testing.T) {
	k, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Points of order 1, 2, 4 and 8, and non-canonical encodings of them (from libsodium's blocklist).
	points := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}
	for _, h := range points {
		peer := StaticPublic(mustHex(t, h))
		shared, err := k.ECDH(peer)
		if !errors.Is(err, ErrLowOrder) {
			t.Errorf("ECDH(%s): err = %v, want ErrLowOrder", h, err)
		}
		if shared != ([32]byte{}) {
			t.Errorf("ECDH(%s) returned a secret with its error", h)
		}
	}
}

func TestPublicTextRoundTrip(t *testing.T) {
	id, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ip := id.Public()
	s := ip.String()
	if len(s) != 44 || s != base64.StdEncoding.EncodeToString(ip[:]) {
		t.Fatalf("String() = %q, want padded base64 of the key", s)
	}
	if got, err := ParseIdentityPublic(s); err != nil || got != ip {
		t.Errorf("ParseIdentityPublic(%q) = %v, %v; want %v", s, got, err, ip)
	}
	text, err := ip.MarshalText()
	if err != nil || string(text) != s {
		t.Errorf("MarshalText() = %q, %v; want %q", text, err, s)
	}
	var ip2 IdentityPublic
	if err := ip2.UnmarshalText(text); err != nil || ip2 != ip {
		t.Errorf("UnmarshalText: got %v, %v; want %v", ip2, err, ip)
	}

	st, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp := st.Public()
	s = sp.String()
	if len(s) != 44 || s != base64.StdEncoding.EncodeToString(sp[:]) {
		t.Fatalf("String() = %q, want padded base64 of the key", s)
	}
	if got, err := ParseStaticPublic(s); err != nil || got != sp {
		t.Errorf("ParseStaticPublic(%q) = %v, %v; want %v", s, got, err, sp)
	}
	var sp2 StaticPublic
	if err := sp2.UnmarshalText([]byte(s)); err != nil || sp2 != sp {
		t.Errorf("UnmarshalText: got %v, %v; want %v", sp2, err, sp)
	}

	// The encodings must also work where other code uses them: JSON config and descriptors.
	type config struct {
		ID    IdentityPublic
		Onion StaticPublic
	}
	in := config{ip, sp}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"`+ip.String()+`"`) {
		t.Errorf("JSON %s does not hold the identity key as text", j)
	}
	var out config
	if err := json.Unmarshal(j, &out); err != nil || out != in {
		t.Errorf("JSON round trip: got %+v, %v; want %+v", out, err, in)
	}
}

func TestParsePublicRejects(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	bad := []struct {
		name string
		s    string
	}{
		{"empty", ""},
		{"43 chars", valid[:43]},
		{"45 chars", valid + "="},
		{"unpadded", strings.TrimRight(valid, "=")},
		{"leading space", " " + valid[1:]},
		{"trailing newline", valid[:43] + "\n"},
		{"inner newline", valid[:20] + "\n" + valid[21:]},
		{"inner space", valid[:20] + " " + valid[21:]},
		{"carriage return", valid[:20] + "\r" + valid[21:]},
		{"tab", "\t" + valid[1:]},
		{"bad character", "!" + valid[1:]},
		{"URL alphabet", "-" + valid[1:]},
		{"33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"31 bytes", base64.StdEncoding.EncodeToString(make([]byte, 31)) + "===="},
		{"non-zero padding bits", valid[:42] + "B="},
		{"hex", hex.EncodeToString(make([]byte, 22))},
	}
	for _, tt := range bad {
		if tt.name == "45 chars" && len(tt.s) != 45 || tt.name == "43 chars" && len(tt.s) != 43 {
			t.Fatalf("%s: test input has %d characters", tt.name, len(tt.s))
		}
		_, err := ParseIdentityPublic(tt.s)
		if err == nil {
			t.Errorf("ParseIdentityPublic(%s %q): no error", tt.name, tt.s)
		} else if !strings.Contains(err.Error(), "identity public key") {
			t.Errorf("ParseIdentityPublic(%s): error %q does not name the key kind", tt.name, err)
		}
		_, err = ParseStaticPublic(tt.s)
		if err == nil {
			t.Errorf("ParseStaticPublic(%s %q): no error", tt.name, tt.s)
		} else if !strings.Contains(err.Error(), "static public key") {
			t.Errorf("ParseStaticPublic(%s): error %q does not name the key kind", tt.name, err)
		}
		var p IdentityPublic
		if err := p.UnmarshalText([]byte(tt.s)); err == nil || p != (IdentityPublic{}) {
			t.Errorf("IdentityPublic.UnmarshalText(%s): err = %v, key = %v", tt.name, err, p)
		}
	}
	// An all-zero static key is syntactically fine; ECDH is where it is refused.
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, err := ParseStaticPublic(zero); err != nil {
		t.Errorf("ParseStaticPublic(zero key): %v", err)
	}
}

func TestStringHidesSecret(t *testing.T) {
	id, err := GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key    fmt.Stringer
		secret []byte
		want   string
	}{
		{id, id.Seed(), "Identity(" + id.Public().String() + ")"},
		{st, st.Bytes(), "Static(" + st.Public().String() + ")"},
	}
	for _, c := range cases {
		for _, s := range []string{c.key.String(), fmt.Sprint(c.key), fmt.Sprintf("%+v", c.key)} {
			if s != c.want {
				t.Errorf("String() = %q, want %q", s, c.want)
			}
			for _, enc := range []string{
				base64.StdEncoding.EncodeToString(c.secret),
				base64.RawStdEncoding.EncodeToString(c.secret),
				hex.EncodeToString(c.secret),
			} {
				if strings.Contains(s, enc) {
					t.Errorf("String() = %q contains the secret", s)
				}
			}
		}
	}
}
