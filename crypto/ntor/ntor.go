// Package ntor is MeshVPN's per-hop circuit handshake: a one-way authenticated X25519 key agreement in
// the shape of Tor's ntor (tor-spec §5.1.4, proposal 216). The client combines a fresh ephemeral key with
// the relay's published onion key and identity; only the holder of the onion key's private half can
// produce the confirmation tag, both ephemeral keys give forward secrecy, and the cipher suite offer and
// choice are bound into the transcript so that no hop in between can downgrade them.
//
// Messages (byte layouts in docs/protocol.md):
//
//	client → relay  version(1) ID(32) B(32) X(32) offer(1)      98 bytes
//	relay  → client Y(32) AUTH(32) suite(1)                      65 bytes
//
// Both sides compute
//
//	secret_input = EXP(X,y) | EXP(X,b) | ID | B | X | Y | PROTOID | offer
//	KEY_SEED     = HMAC(t_key, secret_input)
//	verify       = HMAC(t_verify, secret_input)
//	auth_input   = verify | ID | B | Y | X | PROTOID | suite | "Server"
//	AUTH         = HMAC(t_mac, auth_input)
//	Kf | Kb      = HKDF-Expand(KEY_SEED, m_expand | suite, 64)
//
// with the labels of package kdf.
package ntor

import (
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/meshvpn/meshvpn/crypto/kdf"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

const (
	// Version is the handshake version this package speaks; it is the client message's first byte.
	Version = 1
	// ClientMessageLen is the length of the client's handshake message (the body of CREATE).
	ClientMessageLen = 1 + 32 + 32 + 32 + 1
	// ServerMessageLen is the length of the relay's reply (the body of CREATED).
	ServerMessageLen = 32 + 32 + 1
)

var (
	// ErrMalformed means a handshake message has the wrong length or version.
	ErrMalformed = errors.New("ntor: malformed handshake message")
	// ErrNotForUs means the client named an identity or onion key this relay does not hold (a stale
	// directory, or a message meant for another relay).
	ErrNotForUs = errors.New("ntor: identity or onion key is not this relay's")
	// ErrNoSuite means the client offered no cipher suite the relay accepts.
	ErrNoSuite = errors.New("ntor: no common cipher suite")
	// ErrAuth means the relay's confirmation tag did not verify: a wrong relay, a wrong onion key, or a
	// tampered message.
	ErrAuth = errors.New("ntor: key confirmation failed")
	// ErrBadPoint means a peer's ephemeral key is a low-order point, which would force a known secret.
	ErrBadPoint = errors.New("ntor: invalid ephemeral key")
)

// ClientMessage is the client's handshake message, decoded.
type ClientMessage struct {
	ID    keys.IdentityPublic
	Onion keys.StaticPublic
	X     [32]byte
	Offer onion.SuiteSet
}

// Encode returns the message's wire form.
func (m *ClientMessage) Encode() []byte {
	b := make([]byte, 0, ClientMessageLen)
	b = append(b, Version)
	b = append(b, m.ID[:]...)
	b = append(b, m.Onion[:]...)
	b = append(b, m.X[:]...)
	return append(b, byte(m.Offer))
}

// DecodeClientMessage parses a client handshake message.
func DecodeClientMessage(b []byte) (ClientMessage, error) {
	var m ClientMessage
	if len(b) != ClientMessageLen {
		return m, fmt.Errorf("%w: client message is %d bytes, want %d", ErrMalformed, len(b), ClientMessageLen)
	}
	if b[0] != Version {
		return m, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	copy(m.ID[:], b[1:33])
	copy(m.Onion[:], b[33:65])
	copy(m.X[:], b[65:97])
	m.Offer = onion.SuiteSet(b[97])
	return m, nil
}

// ServerMessage is the relay's handshake reply, decoded.
type ServerMessage struct {
	Y     [32]byte
	Auth  [32]byte
	Suite onion.Suite
}

// Encode returns the message's wire form.
func (m *ServerMessage) Encode() []byte {
	b := make([]byte, 0, ServerMessageLen)
	b = append(b, m.Y[:]...)
	b = append(b, m.Auth[:]...)
	return append(b, byte(m.Suite))
}

// DecodeServerMessage parses a relay's handshake reply.
func DecodeServerMessage(b []byte) (ServerMessage, error) {
	var m ServerMessage
	if len(b) != ServerMessageLen {
		return m, fmt.Errorf("%w: server message is %d bytes, want %d", ErrMalformed, len(b), ServerMessageLen)
	}
	copy(m.Y[:], b[:32])
	copy(m.Auth[:], b[32:64])
	m.Suite = onion.Suite(b[64])
	return m, nil
}

// Client is the client's side of one handshake in progress.
type Client struct {
	msg ClientMessage
	x   *ecdh.PrivateKey
}

// NewClient starts a handshake with the relay whose identity and current onion key the client took from
// a verified descriptor. It reads the ephemeral key from rand and returns the message to send.
func NewClient(rand io.Reader, id keys.IdentityPublic, onionKey keys.StaticPublic, offer onion.SuiteSet) (*Client, []byte, error) {
	if offer == 0 {
		return nil, nil, fmt.Errorf("%w: empty offer", ErrNoSuite)
	}
	x, err := keys.GenerateStatic(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("ntor client ephemeral: %w", err)
	}
	c := &Client{x: x.PrivateKey(), msg: ClientMessage{ID: id, Onion: onionKey, X: x.Public(), Offer: offer}}
	return c, c.msg.Encode(), nil
}

// Finish checks the relay's reply and returns the hop's layer keys. A reply not made by the holder of
// the onion key, or made for another client message, fails with ErrAuth.
func (c *Client) Finish(reply []byte) (onion.HopKeys, error) {
	m, err := DecodeServerMessage(reply)
	if err != nil {
		return onion.HopKeys{}, err
	}
	if !c.msg.Offer.Has(m.Suite) || !m.Suite.Valid() {
		return onion.HopKeys{}, fmt.Errorf("%w: relay chose %v, not offered", ErrAuth, m.Suite)
	}
	xy, err := exp(c.x, m.Y[:])
	if err != nil {
		return onion.HopKeys{}, err
	}
	xb, err := exp(c.x, c.msg.Onion[:])
	if err != nil {
		return onion.HopKeys{}, err
	}
	keys, auth, err := derive(xy[:], xb[:], &c.msg, m.Y, m.Suite)
	if err != nil {
		return onion.HopKeys{}, err
	}
	if subtle.ConstantTimeCompare(auth[:], m.Auth[:]) != 1 {
		return onion.HopKeys{}, ErrAuth
	}
	return keys, nil
}

// Server is a relay's side of the handshake: its identity, its onion keys (current first, then the
// previous one while clients may still use it after a rotation) and its suite preference.
type Server struct {
	ID        keys.IdentityPublic
	OnionKeys []*keys.Static
	Prefer    []onion.Suite
}

// Respond answers a client message: it returns the reply to send and the hop's layer keys.
func (s *Server) Respond(rand io.Reader, msg []byte) ([]byte, onion.HopKeys, error) {
	m, err := DecodeClientMessage(msg)
	if err != nil {
		return nil, onion.HopKeys{}, err
	}
	if m.ID != s.ID {
		return nil, onion.HopKeys{}, ErrNotForUs
	}
	var b *keys.Static
	for _, k := range s.OnionKeys {
		if k.Public() == m.Onion {
			b = k
			break
		}
	}
	if b == nil {
		return nil, onion.HopKeys{}, ErrNotForUs
	}
	suite, ok := m.Offer.Choose(s.Prefer)
	if !ok {
		return nil, onion.HopKeys{}, ErrNoSuite
	}
	y, err := keys.GenerateStatic(rand)
	if err != nil {
		return nil, onion.HopKeys{}, fmt.Errorf("ntor relay ephemeral: %w", err)
	}
	xy, err := exp(y.PrivateKey(), m.X[:])
	if err != nil {
		return nil, onion.HopKeys{}, err
	}
	xb, err := exp(b.PrivateKey(), m.X[:])
	if err != nil {
		return nil, onion.HopKeys{}, err
	}
	reply := ServerMessage{Y: y.Public(), Suite: suite}
	hk, auth, err := derive(xy[:], xb[:], &m, reply.Y, suite)
	if err != nil {
		return nil, onion.HopKeys{}, err
	}
	reply.Auth = auth
	return reply.Encode(), hk, nil
}

// exp is X25519 of priv with the peer's public key, refusing low-order points.
func exp(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPoint, err)
	}
	s, err := priv.ECDH(pub)
	if err != nil {
		return nil, ErrBadPoint
	}
	return s, nil
}

// derive computes the hop keys and the confirmation tag from the two shared secrets and the transcript.
func derive(xy, xb []byte, m *ClientMessage, y [32]byte, suite onion.Suite) (onion.HopKeys, [32]byte, error) {
	proto := []byte(kdf.NtorProtoID)
	offer := []byte{byte(m.Offer)}
	secret := [][]byte{xy, xb, m.ID[:], m.Onion[:], m.X[:], y[:], proto, offer}
	seed := kdf.MAC(kdf.NtorKey, secret...)
	verify := kdf.MAC(kdf.NtorVerify, secret...)
	auth := kdf.MAC(kdf.NtorMAC, verify[:], m.ID[:], m.Onion[:], y[:], m.X[:], proto, []byte{byte(suite)}, []byte(kdf.NtorServer))

	okm, err := kdf.Expand(seed[:], kdf.NtorExpand+":"+suite.String(), 2*onion.KeySize)
	if err != nil {
		return onion.HopKeys{}, auth, err
	}
	hk := onion.HopKeys{Suite: suite}
	copy(hk.Forward[:], okm[:onion.KeySize])
	copy(hk.Backward[:], okm[onion.KeySize:])
	clear(okm)
	binding, err := kdf.Expand(seed[:], kdf.NtorBinding, len(hk.Binding))
	if err != nil {
		return onion.HopKeys{}, auth, err
	}
	copy(hk.Binding[:], binding)
	clear(binding)
	clear(seed[:])
	return hk, auth, nil
}
