// Package keys holds the long-term keys of MeshVPN nodes: the Ed25519 identity key that names a node
// and signs its descriptors, and the X25519 static keys (onion and link keys) that relays use in
// handshakes. It also defines their text encodings and the key files they are kept in.
//
// Public keys are written as standard padded base64 (44 characters), as WireGuard does, so that they
// can be pasted into configuration files and logs. Private keys never appear in String output.
package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// keySize is the length in bytes of every key this package handles: Ed25519 seeds and public keys,
// X25519 private and public keys.
const keySize = 32

// encodedKeySize is the length of a key in padded base64.
const encodedKeySize = 44

// ErrLowOrder is returned (wrapped) by Static.ECDH when the peer's public key is a low-order point, so
// that the shared secret would be all zeros and known to anyone. Such keys only come from an attacker.
var ErrLowOrder = errors.New("keys: low-order X25519 public key")

// Identity is a node's long-term Ed25519 signing key. Its public half is the node's identity.
type Identity struct {
	priv ed25519.PrivateKey
}

// IdentityPublic is an Ed25519 public key; it also serves as a relay's identity (ID) in handshakes.
type IdentityPublic [32]byte

// GenerateIdentity returns a new identity key made from 32 bytes read from rand.
// The same bytes always give the same key, which makes tests reproducible; pass crypto/rand.Reader
// for real keys.
func GenerateIdentity(rand io.Reader) (*Identity, error) {
	// ed25519.GenerateKey is not used: since Go 1.26 it ignores its reader.
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("keys: generate identity key: %w", err)
	}
	return IdentityFromSeed(seed)
}

// IdentityFromSeed returns the identity key with the given 32-byte Ed25519 seed.
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("keys: identity key seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &Identity{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Seed returns a copy of the key's 32-byte seed, the only part a key file needs to store.
func (k *Identity) Seed() []byte {
	return k.priv.Seed()
}

// Public returns the key's public half.
func (k *Identity) Public() IdentityPublic {
	var p IdentityPublic
	copy(p[:], k.priv[ed25519.SeedSize:])
	return p
}

// Sign returns the 64-byte Ed25519 signature of msg.
func (k *Identity) Sign(msg []byte) []byte {
	return ed25519.Sign(k.priv, msg)
}

// String returns "Identity(<public key>)". It never shows the secret, so keys are safe to log.
func (k *Identity) String() string {
	return "Identity(" + k.Public().String() + ")"
}

// Verify reports whether sig is a valid signature of msg by p.
func (p IdentityPublic) Verify(msg, sig []byte) bool {
	// ed25519.Verify panics only for a public key of the wrong length, which p cannot be.
	return ed25519.Verify(p[:], msg, sig)
}

// String returns the key in base64.
func (p IdentityPublic) String() string {
	return encodeKey(p)
}

// MarshalText returns the key in base64.
func (p IdentityPublic) MarshalText() ([]byte, error) {
	return []byte(encodeKey(p)), nil
}

// UnmarshalText sets p from the base64 text MarshalText returns.
func (p *IdentityPublic) UnmarshalText(b []byte) error {
	k, err := ParseIdentityPublic(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// ParseIdentityPublic parses an identity public key from its base64 text, accepting only the exact
// form String returns.
func ParseIdentityPublic(s string) (IdentityPublic, error) {
	k, err := decodeKey(s, "identity public key")
	return IdentityPublic(k), err
}

// Static is an X25519 key-agreement key: a relay's onion key or link key.
type Static struct {
	// priv is parsed once: ecdh keeps the key in the form its field arithmetic wants, which halves
	// the cost of each ECDH compared with starting from bytes.
	priv *ecdh.PrivateKey
}

// StaticPublic is an X25519 public key.
type StaticPublic [32]byte

// GenerateStatic returns a new static key made from 32 bytes read from rand.
// The same bytes always give the same key; pass crypto/rand.Reader for real keys.
func GenerateStatic(rand io.Reader) (*Static, error) {
	b := make([]byte, keySize)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("keys: generate static key: %w", err)
	}
	return StaticFromBytes(b)
}

// StaticFromBytes returns the static key with the given 32-byte X25519 private key.
func StaticFromBytes(b []byte) (*Static, error) {
	if len(b) != keySize {
		return nil, fmt.Errorf("keys: static private key is %d bytes, want %d", len(b), keySize)
	}
	priv, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("keys: static private key: %w", err)
	}
	return &Static{priv: priv}, nil
}

// Bytes returns a copy of the 32-byte private key.
func (k *Static) Bytes() []byte {
	return k.priv.Bytes()
}

// Public returns the key's public half.
func (k *Static) Public() StaticPublic {
	var p StaticPublic
	copy(p[:], k.priv.PublicKey().Bytes())
	return p
}

// ECDH returns the X25519 shared secret of k and peer. If peer is a low-order point the secret would
// be all zeros, and ECDH returns an error wrapping ErrLowOrder instead.
func (k *Static) ECDH(peer StaticPublic) ([32]byte, error) {
	var out [32]byte
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return out, fmt.Errorf("keys: static public key %s: %w", peer, err)
	}
	shared, err := k.priv.ECDH(pub)
	if err != nil {
		// The only way X25519 fails on a 32-byte key is an all-zero result.
		return out, fmt.Errorf("keys: ECDH with %s: %w", peer, ErrLowOrder)
	}
	copy(out[:], shared)
	return out, nil
}

// PrivateKey returns the parsed key, for callers that do many ECDH operations or need the
// crypto/ecdh type.
func (k *Static) PrivateKey() *ecdh.PrivateKey {
	return k.priv
}

// String returns "Static(<public key>)". It never shows the secret, so keys are safe to log.
func (k *Static) String() string {
	return "Static(" + k.Public().String() + ")"
}

// String returns the key in base64.
func (p StaticPublic) String() string {
	return encodeKey(p)
}

// MarshalText returns the key in base64.
func (p StaticPublic) MarshalText() ([]byte, error) {
	return []byte(encodeKey(p)), nil
}

// UnmarshalText sets p from the base64 text MarshalText returns.
func (p *StaticPublic) UnmarshalText(b []byte) error {
	k, err := ParseStaticPublic(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// ParseStaticPublic parses a static public key from its base64 text, accepting only the exact form
// String returns. It does not reject low-order points; ECDH does.
func ParseStaticPublic(s string) (StaticPublic, error) {
	k, err := decodeKey(s, "static public key")
	return StaticPublic(k), err
}

func encodeKey(k [keySize]byte) string {
	return base64.StdEncoding.EncodeToString(k[:])
}

// decodeKey accepts only the canonical encoding of a key, so that each key has one spelling and
// text compares equal exactly when keys do. kind names the expected key in errors.
func decodeKey(s, kind string) ([keySize]byte, error) {
	var k [keySize]byte
	if len(s) != encodedKeySize {
		return k, fmt.Errorf("keys: invalid %s: %d characters, want %d base64 characters", kind, len(s), encodedKeySize)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("keys: invalid %s: bad base64: %w", kind, err)
	}
	if len(b) != keySize {
		return k, fmt.Errorf("keys: invalid %s: %d bytes, want %d", kind, len(b), keySize)
	}
	copy(k[:], b)
	// Strict decoding of 44 characters already implies this, but the property matters enough (one
	// spelling per key) to check directly.
	if encodeKey(k) != s {
		return [keySize]byte{}, fmt.Errorf("keys: invalid %s: not in canonical base64", kind)
	}
	return k, nil
}
