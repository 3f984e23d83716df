package ntor

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

type relay struct {
	id     *keys.Identity
	onion  *keys.Static
	server *Server
}

func newRelay(t testing.TB) *relay {
	t.Helper()
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := keys.GenerateStatic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &relay{id: id, onion: ok, server: &Server{
		ID: id.Public(), OnionKeys: []*keys.Static{ok}, Prefer: []onion.Suite{onion.AES256GCM, onion.ChaCha20Poly1305},
	}}
}

func TestBothSidesDeriveEqualKeys(t *testing.T) {
	r := newRelay(t)
	for _, offer := range []onion.SuiteSet{
		onion.SuitesOf(onion.ChaCha20Poly1305),
		onion.SuitesOf(onion.AES256GCM),
		onion.SuitesOf(onion.ChaCha20Poly1305, onion.AES256GCM),
	} {
		c, msg, err := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), offer)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) != ClientMessageLen {
			t.Fatalf("client message %d bytes", len(msg))
		}
		reply, relayKeys, err := r.server.Respond(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		clientKeys, err := c.Finish(reply)
		if err != nil {
			t.Fatal(err)
		}
		if clientKeys != relayKeys {
			t.Fatal("client and relay derived different keys")
		}
		if clientKeys.Forward == clientKeys.Backward {
			t.Fatal("forward and backward keys are equal")
		}
		if clientKeys.Binding == ([32]byte{}) || clientKeys.Binding == clientKeys.Forward || clientKeys.Binding == clientKeys.Backward {
			t.Fatal("the binding secret is empty or equal to a layer key")
		}
		if !offer.Has(clientKeys.Suite) {
			t.Fatalf("chose %v, not offered in %b", clientKeys.Suite, offer)
		}
	}
}

func TestSuiteChoiceFollowsRelayPreference(t *testing.T) {
	r := newRelay(t)
	r.server.Prefer = []onion.Suite{onion.ChaCha20Poly1305, onion.AES256GCM}
	c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.SuitesOf(onion.ChaCha20Poly1305, onion.AES256GCM))
	reply, _, err := r.server.Respond(rand.Reader, msg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Finish(reply)
	if err != nil || k.Suite != onion.ChaCha20Poly1305 {
		t.Fatalf("suite %v, %v", k.Suite, err)
	}
	r.server.Prefer = []onion.Suite{onion.AES256GCM}
	_, msg, _ = NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.SuitesOf(onion.ChaCha20Poly1305))
	if _, _, err := r.server.Respond(rand.Reader, msg); !errors.Is(err, ErrNoSuite) {
		t.Fatalf("no common suite: %v", err)
	}
}

func TestWrongKeysFail(t *testing.T) {
	r := newRelay(t)
	other := newRelay(t)

	// The client names the right relay but an onion key the relay does not hold.
	_, msg, _ := NewClient(rand.Reader, r.id.Public(), other.onion.Public(), onion.DefaultOffer())
	if _, _, err := r.server.Respond(rand.Reader, msg); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("unknown onion key: %v", err)
	}
	// ... or another relay's identity.
	_, msg, _ = NewClient(rand.Reader, other.id.Public(), r.onion.Public(), onion.DefaultOffer())
	if _, _, err := r.server.Respond(rand.Reader, msg); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("unknown identity: %v", err)
	}

	// An impostor holding everything but the onion key's private half answers in the relay's name: the
	// client must refuse its reply.
	impostor := &Server{ID: r.id.Public(), OnionKeys: []*keys.Static{other.onion}, Prefer: r.server.Prefer}
	c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	forged := bytes.Clone(msg)
	op := other.onion.Public()
	copy(forged[33:65], op[:]) // make the impostor accept the message
	reply, _, err := impostor.Respond(rand.Reader, forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(reply); !errors.Is(err, ErrAuth) {
		t.Fatalf("reply from a relay without the onion key: %v", err)
	}

	// A reply made for another client message.
	c1, _, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	_, msg2, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	reply2, _, _ := r.server.Respond(rand.Reader, msg2)
	if _, err := c1.Finish(reply2); !errors.Is(err, ErrAuth) {
		t.Fatalf("reply to another handshake: %v", err)
	}
}

// TestTamperedMessagesFail flips every bit of both messages; each flip must make the handshake fail or
// be refused, never yield keys the two sides disagree on.
func TestTamperedMessagesFail(t *testing.T) {
	r := newRelay(t)
	for bit := range ClientMessageLen * 8 {
		c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.SuitesOf(onion.ChaCha20Poly1305, onion.AES256GCM))
		msg[bit/8] ^= 1 << (bit % 8)
		reply, _, err := r.server.Respond(rand.Reader, msg)
		if err != nil {
			continue // refused by the relay
		}
		if _, err := c.Finish(reply); !errors.Is(err, ErrAuth) {
			t.Fatalf("client message bit %d flipped: handshake finished (%v)", bit, err)
		}
	}
	for bit := range ServerMessageLen * 8 {
		c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.SuitesOf(onion.ChaCha20Poly1305, onion.AES256GCM))
		reply, _, err := r.server.Respond(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		reply[bit/8] ^= 1 << (bit % 8)
		if _, err := c.Finish(reply); err == nil {
			t.Fatalf("reply bit %d flipped: handshake finished", bit)
		}
	}
}

func TestPreviousOnionKeyStillAnswers(t *testing.T) {
	r := newRelay(t)
	old := r.onion
	fresh, _ := keys.GenerateStatic(rand.Reader)
	r.server.OnionKeys = []*keys.Static{fresh, old}
	for _, k := range []*keys.Static{fresh, old} {
		c, msg, _ := NewClient(rand.Reader, r.id.Public(), k.Public(), onion.DefaultOffer())
		reply, rk, err := r.server.Respond(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := c.Finish(reply)
		if err != nil || ck != rk {
			t.Fatalf("onion key %v: %v", k.Public(), err)
		}
	}
	r.server.OnionKeys = []*keys.Static{fresh}
	_, msg, _ := NewClient(rand.Reader, r.id.Public(), old.Public(), onion.DefaultOffer())
	if _, _, err := r.server.Respond(rand.Reader, msg); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("retired onion key: %v", err)
	}
}

// TestReplayedCreateYieldsUnusableKeys: a relay answers a replayed client message with a fresh
// ephemeral key, so whoever replays it gets a circuit whose keys nobody knows, and the original client
// refuses the second reply.
func TestReplayedCreateYieldsUnusableKeys(t *testing.T) {
	r := newRelay(t)
	c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	reply1, k1, _ := r.server.Respond(rand.Reader, msg)
	reply2, k2, _ := r.server.Respond(rand.Reader, msg)
	if k1 == k2 || bytes.Equal(reply1, reply2) {
		t.Fatal("a replayed client message produced the same keys")
	}
	ck, err := c.Finish(reply1)
	if err != nil || ck != k1 {
		t.Fatal(err)
	}
}

func TestLowOrderEphemeralIsRefused(t *testing.T) {
	r := newRelay(t)
	_, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	clear(msg[65:97]) // X = 0, a low-order point
	if _, _, err := r.server.Respond(rand.Reader, msg); !errors.Is(err, ErrBadPoint) {
		t.Fatalf("zero client ephemeral: %v", err)
	}
	c, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	reply, _, _ := r.server.Respond(rand.Reader, msg)
	clear(reply[:32])
	if _, err := c.Finish(reply); !errors.Is(err, ErrBadPoint) {
		t.Fatalf("zero relay ephemeral: %v", err)
	}
}

func TestDecodersRejectBadLengthsAndVersions(t *testing.T) {
	for _, n := range []int{0, 1, ClientMessageLen - 1, ClientMessageLen + 1} {
		if _, err := DecodeClientMessage(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("client message of %d bytes: %v", n, err)
		}
	}
	m := make([]byte, ClientMessageLen)
	m[0] = Version + 1
	if _, err := DecodeClientMessage(m); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown version: %v", err)
	}
	for _, n := range []int{0, ServerMessageLen - 1, ServerMessageLen + 1} {
		if _, err := DecodeServerMessage(make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("server message of %d bytes: %v", n, err)
		}
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	f.Add((&ClientMessage{Offer: 1}).Encode())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClientMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("decoded message does not re-encode to its input")
		}
	})
}

func FuzzDecodeServerMessage(f *testing.F) {
	f.Add((&ServerMessage{Suite: 1}).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeServerMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("decoded reply does not re-encode to its input")
		}
	})
}

// FuzzRespond feeds arbitrary client messages to a relay: it must answer or refuse, never panic.
func FuzzRespond(f *testing.F) {
	r := newRelay(f)
	_, msg, _ := NewClient(rand.Reader, r.id.Public(), r.onion.Public(), onion.DefaultOffer())
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		reply, _, err := r.server.Respond(rand.Reader, b)
		if err == nil && len(reply) != ServerMessageLen {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}
