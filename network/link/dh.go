package link

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// x25519 is Noise's DH25519 (RFC 7748 X25519, named "25519", so the protocol name and every byte on
// the wire are unchanged) computed with crypto/ecdh keys that are parsed once per handshake.
//
// flynn/noise's DH25519 goes through x/crypto's curve25519.X25519, which parses the private key on
// every call, and parsing an X25519 private key computes its public key: a second scalar
// multiplication. A handshake does four DHs on each side with two private keys each, so keeping the
// parsed keys halves its cost (18 scalar multiplications down to 10), which matters most when a
// responder is being flooded. It is used for one handshake only; it is not safe for concurrent use.
type x25519 struct {
	static, ephemeral       *ecdh.PrivateKey
	staticRaw, ephemeralRaw []byte
}

func newCipherSuite(static *localKey) noise.CipherSuite {
	return noise.NewCipherSuite(&x25519{static: static.parsed, staticRaw: static.dh.Private}, noise.CipherChaChaPoly, noise.HashBLAKE2s)
}

// GenerateKeypair makes the handshake's ephemeral key from 32 bytes of rng, as DH25519 does.
func (d *x25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(rng, seed[:]); err != nil {
		return noise.DHKey{}, fmt.Errorf("link: ephemeral key: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	clear(seed[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	d.ephemeral, d.ephemeralRaw = k, k.Bytes()
	return noise.DHKey{Private: d.ephemeralRaw, Public: k.PublicKey().Bytes()}, nil
}

// DH returns X25519(priv, pub), and an error if the result is all zeros (pub is a low-order point).
func (d *x25519) DH(priv, pub []byte) ([]byte, error) {
	k, err := d.key(priv)
	if err != nil {
		return nil, err
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

// key returns the parsed form of priv, which is one of the two keys the handshake uses.
func (d *x25519) key(priv []byte) (*ecdh.PrivateKey, error) {
	if d.static != nil && subtle.ConstantTimeCompare(priv, d.staticRaw) == 1 {
		return d.static, nil
	}
	if d.ephemeral != nil && subtle.ConstantTimeCompare(priv, d.ephemeralRaw) == 1 {
		return d.ephemeral, nil
	}
	return ecdh.X25519().NewPrivateKey(priv)
}

// DHLen is the length of public keys and shared secrets.
func (d *x25519) DHLen() int { return 32 }

// DHName is DH25519's name in the Noise protocol name, which this DH must keep.
func (d *x25519) DHName() string { return "25519" }
