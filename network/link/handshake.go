package link

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"fmt"

	"github.com/flynn/noise"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// The link handshake is Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, the pattern WireGuard uses:
//
//	-> e, es, s, ss, {timestamp}
//	<- e, ee, se, psk, {}
//
// The initiator knows the responder's static key (from its descriptor) and sends its own encrypted; both
// sides contribute an ephemeral, so the transport keys have forward secrecy, and the responder's
// reply proves it holds its static key. BLAKE2s is WireGuard's choice too: it is the fastest of Noise's
// hashes on the short inputs a handshake hashes.
//
// The cleartext packet headers are bound into the transcript so that no header bit can be changed
// without failing the handshake: the initiation header (type, sender and rekey index) is part of the prologue,
// and the response header (type, sender and receiver index) is the psk2 value. That psk is public, so
// it adds no secret — a Noise psk pattern with a known psk is exactly as strong as the pattern without
// it — it only puts those bytes into the hash, which flynn/noise offers no other way to do after the
// prologue.
//
// Each handshake gets its own cipher suite value (newCipherSuite in dh.go): the same DH25519, but with
// its keys parsed once rather than at every DH.

// protocolPrologue starts every handshake's prologue, so that a handshake of another protocol or
// version that happened to use the same Noise pattern cannot be mistaken for ours.
// v2 is the wire format with the rekey index in the initiation's header and mac1/mac2 (cookie.go).
const protocolPrologue = "meshvpn-link-v2"

// errHandshake is returned (wrapped) for a handshake message that fails authentication.
var errHandshake = errors.New("link: handshake message failed authentication")

// sessionKeys are the two transport keys a completed handshake yields, named from one side's view.
type sessionKeys struct {
	send, recv [32]byte
}

// localKey is a node's static key in the forms Noise and crypto/ecdh want.
type localKey struct {
	dh     noise.DHKey
	parsed *ecdh.PrivateKey
	pub    keys.StaticPublic
	macs   macKeys // checks mac1 on messages to this node, seals its cookie replies
}

func newLocalKey(k *keys.Static) *localKey {
	pub := k.Public()
	return &localKey{dh: noise.DHKey{Private: k.Bytes(), Public: pub[:]}, parsed: k.PrivateKey(), pub: pub, macs: deriveMACKeys(pub)}
}

func prologue(senderIndex, rekeyIndex uint32) []byte {
	h := initiationHeader(senderIndex, rekeyIndex)
	return append([]byte(protocolPrologue), h[:]...)
}

func responsePSK(senderIndex, receiverIndex uint32) []byte {
	psk := make([]byte, 32)
	h := responseHeader(senderIndex, receiverIndex)
	copy(psk, h[:])
	return psk
}

// initiatorHandshake is one handshake attempt as seen by its initiator, between sending the initiation
// and reading the response. Each attempt (including each retransmission) has a fresh ephemeral key,
// timestamp and index.
type initiatorHandshake struct {
	local     *localKey
	peer      keys.StaticPublic
	index     uint32
	rekey     uint32 // the initiation's RekeyIndex
	ephemeral [32]byte
	timestamp tai64n
	state     *noise.HandshakeState
	// spoiled is set when a response failed to authenticate. flynn/noise does not restore all of its
	// state after such a failure, so the state is rebuilt (from the same ephemeral and timestamp, which
	// gives the same transcript) before the next response is tried.
	spoiled bool
}

// newInitiatorHandshake starts a handshake and returns it with the initiation to send, without its
// MACs (cookie.go). ephemeral must be 32 fresh random bytes; rekey is zero or the responder's index of
// the session this handshake replaces.
func newInitiatorHandshake(local *localKey, peer keys.StaticPublic, index, rekey uint32, ts tai64n, ephemeral [32]byte) (*initiatorHandshake, initiation, error) {
	h := &initiatorHandshake{local: local, peer: peer, index: index, rekey: rekey, ephemeral: ephemeral, timestamp: ts}
	msg, err := h.start()
	return h, msg, err
}

// start builds the Noise state and writes the first message; it is deterministic given the fields.
func (h *initiatorHandshake) start() (initiation, error) {
	m := initiation{SenderIndex: h.index, RekeyIndex: h.rekey}
	st, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           newCipherSuite(h.local),
		Random:                bytes.NewReader(h.ephemeral[:]),
		Pattern:               noise.HandshakeIK,
		Initiator:             true,
		Prologue:              prologue(h.index, h.rekey),
		PresharedKeyPlacement: 2,
		StaticKeypair:         h.local.dh,
		PeerStatic:            h.peer[:],
	})
	if err != nil {
		return m, fmt.Errorf("link: handshake state: %w", err)
	}
	out, _, _, err := st.WriteMessage(m.Noise[:0], h.timestamp[:])
	if err != nil {
		// Only a low-order peer key gets here (the DH result would be all zeros).
		return m, fmt.Errorf("link: write initiation: %w", err)
	}
	if len(out) != initiationNoiseLen {
		return m, fmt.Errorf("link: initiation is %d bytes, want %d", len(out), initiationNoiseLen)
	}
	h.state, h.spoiled = st, false
	return m, nil
}

// readResponse completes the handshake with the responder's reply and returns the session keys. A
// failed attempt leaves h able to read the genuine response later.
func (h *initiatorHandshake) readResponse(m *response) (sessionKeys, error) {
	var ks sessionKeys
	if m.ReceiverIndex != h.index {
		return ks, fmt.Errorf("link: response for index %d, want %d: %w", m.ReceiverIndex, h.index, errHandshake)
	}
	if h.spoiled {
		if _, err := h.start(); err != nil {
			return ks, err
		}
	}
	h.spoiled = true
	if err := h.state.SetPresharedKey(responsePSK(m.SenderIndex, m.ReceiverIndex)); err != nil {
		return ks, fmt.Errorf("link: handshake psk: %w", err)
	}
	payload, cs1, cs2, err := h.state.ReadMessage(nil, m.Noise[:])
	if err != nil {
		return ks, fmt.Errorf("link: read response: %w: %w", errHandshake, err)
	}
	if len(payload) != 0 || cs1 == nil || cs2 == nil {
		return ks, fmt.Errorf("link: response has a payload: %w", errHandshake)
	}
	h.spoiled = false
	ks.send, ks.recv = cs1.UnsafeKey(), cs2.UnsafeKey()
	return ks, nil
}

// wipe forgets the ephemeral secret once the attempt is over.
func (h *initiatorHandshake) wipe() {
	clear(h.ephemeral[:])
	h.state = nil
}

// responderHandshake is a received, authenticated initiation that has not been answered yet.
type responderHandshake struct {
	peer      keys.StaticPublic
	timestamp tai64n
	index     uint32 // the initiator's index
	state     *noise.HandshakeState
}

// readInitiation authenticates an initiation addressed to local and returns who sent it and when.
// It costs two X25519 operations, so callers rate-limit before calling it.
func readInitiation(local *localKey, m *initiation) (*responderHandshake, error) {
	st, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           newCipherSuite(local),
		Pattern:               noise.HandshakeIK,
		Initiator:             false,
		Prologue:              prologue(m.SenderIndex, m.RekeyIndex),
		PresharedKeyPlacement: 2,
		StaticKeypair:         local.dh,
	})
	if err != nil {
		return nil, fmt.Errorf("link: handshake state: %w", err)
	}
	payload, _, _, err := st.ReadMessage(nil, m.Noise[:])
	if err != nil {
		return nil, fmt.Errorf("link: read initiation: %w: %w", errHandshake, err)
	}
	r := &responderHandshake{index: m.SenderIndex, state: st}
	if len(payload) != timestampLen || len(st.PeerStatic()) != keyLen {
		return nil, fmt.Errorf("link: initiation payload is %d bytes: %w", len(payload), errHandshake)
	}
	copy(r.timestamp[:], payload)
	copy(r.peer[:], st.PeerStatic())
	return r, nil
}

// writeResponse answers the initiation under the responder's new index and returns the response
// (without its mac1) and the session keys. It costs two more X25519 operations and a key generation.
func (r *responderHandshake) writeResponse(index uint32) (response, sessionKeys, error) {
	m := response{SenderIndex: index, ReceiverIndex: r.index}
	var ks sessionKeys
	if err := r.state.SetPresharedKey(responsePSK(m.SenderIndex, m.ReceiverIndex)); err != nil {
		return m, ks, fmt.Errorf("link: handshake psk: %w", err)
	}
	// The responder's ephemeral comes from crypto/rand: readInitiation left Config.Random unset.
	out, cs1, cs2, err := r.state.WriteMessage(m.Noise[:0], nil)
	if err != nil {
		return m, ks, fmt.Errorf("link: write response: %w", err)
	}
	if len(out) != responseNoiseLen || cs1 == nil || cs2 == nil {
		return m, ks, fmt.Errorf("link: response is %d bytes, want %d", len(out), responseNoiseLen)
	}
	// The initiator's first Split output is its sending key, so it is the responder's receiving key.
	ks.send, ks.recv = cs2.UnsafeKey(), cs1.UnsafeKey()
	r.state = nil
	return m, ks, nil
}
