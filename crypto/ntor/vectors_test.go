package ntor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in ../testdata from this implementation")

const vectorsPath = "../testdata/ntor.json"

// vector is one known-answer handshake: fixed secrets in, exact messages and keys out.
type vector struct {
	IdentitySeed   string `json:"identity_seed"`
	OnionPrivate   string `json:"onion_private"`
	ClientEphemera string `json:"client_ephemeral_private"`
	RelayEphemeral string `json:"relay_ephemeral_private"`
	Offer          uint8  `json:"offer"`
	Prefer         []int  `json:"relay_preference"`

	ClientMessage string `json:"client_message"`
	ServerMessage string `json:"server_message"`
	Suite         uint8  `json:"suite"`
	Forward       string `json:"key_forward"`
	Backward      string `json:"key_backward"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runVector(t *testing.T, v *vector) (clientMsg, reply []byte, k onion.HopKeys) {
	t.Helper()
	id, err := keys.IdentityFromSeed(unhex(t, v.IdentitySeed))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := keys.StaticFromBytes(unhex(t, v.OnionPrivate))
	if err != nil {
		t.Fatal(err)
	}
	var prefer []onion.Suite
	for _, s := range v.Prefer {
		prefer = append(prefer, onion.Suite(s))
	}
	server := &Server{ID: id.Public(), OnionKeys: []*keys.Static{ok}, Prefer: prefer}
	c, clientMsg, err := NewClient(bytes.NewReader(unhex(t, v.ClientEphemera)), id.Public(), ok.Public(), onion.SuiteSet(v.Offer))
	if err != nil {
		t.Fatal(err)
	}
	reply, rk, err := server.Respond(bytes.NewReader(unhex(t, v.RelayEphemeral)), clientMsg)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := c.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if ck != rk {
		t.Fatal("sides disagree")
	}
	return clientMsg, reply, ck
}

// TestKnownAnswerVectors recomputes the handshakes in testdata and compares every byte, so that a
// change to the transcript, the labels or the key schedule cannot pass unnoticed.
func TestKnownAnswerVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 2 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for i := range vs {
		v := &vs[i]
		msg, reply, k := runVector(t, v)
		if got := hex.EncodeToString(msg); got != v.ClientMessage {
			t.Errorf("vector %d client message\n got %s\nwant %s", i, got, v.ClientMessage)
		}
		if got := hex.EncodeToString(reply); got != v.ServerMessage {
			t.Errorf("vector %d server message\n got %s\nwant %s", i, got, v.ServerMessage)
		}
		if uint8(k.Suite) != v.Suite || hex.EncodeToString(k.Forward[:]) != v.Forward || hex.EncodeToString(k.Backward[:]) != v.Backward {
			t.Errorf("vector %d keys differ: suite %d fwd %x bwd %x", i, k.Suite, k.Forward, k.Backward)
		}
	}
}

func writeVectors(t *testing.T) {
	seq := func(start byte) string {
		b := make([]byte, 32)
		for i := range b {
			b[i] = start + byte(i)
		}
		return hex.EncodeToString(b)
	}
	vs := []vector{
		{IdentitySeed: seq(0x00), OnionPrivate: seq(0x20), ClientEphemera: seq(0x40), RelayEphemeral: seq(0x60),
			Offer: uint8(onion.SuitesOf(onion.ChaCha20Poly1305)), Prefer: []int{2, 1}},
		{IdentitySeed: seq(0x80), OnionPrivate: seq(0xa0), ClientEphemera: seq(0xc0), RelayEphemeral: seq(0xe0),
			Offer: uint8(onion.SuitesOf(onion.ChaCha20Poly1305, onion.AES256GCM)), Prefer: []int{2, 1}},
	}
	for i := range vs {
		msg, reply, k := runVector(t, &vs[i])
		vs[i].ClientMessage = hex.EncodeToString(msg)
		vs[i].ServerMessage = hex.EncodeToString(reply)
		vs[i].Suite = uint8(k.Suite)
		vs[i].Forward = hex.EncodeToString(k.Forward[:])
		vs[i].Backward = hex.EncodeToString(k.Backward[:])
	}
	data, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsPath, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
