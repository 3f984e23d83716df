// Package whois is the one question a relay answers to anybody: "which relay are you?". A discovery
// authority that found a relay's address on the DHT asks it, learns its identity key, and fetches and
// verifies its signed descriptor from the DHT by that key. The answer is not trusted for anything
// else: a relay that names another's identity only makes the authority look up (and check the
// address of) an honest descriptor.
//
// A request is padded to be longer than the answer, so a relay cannot be used to amplify traffic at
// a spoofed source.
package whois

import (
	"bytes"
	"errors"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

const (
	// RequestLen is the length of every request: longer than a response.
	RequestLen = 96
	// ResponseLen is the length of every response: magic, kind, nonce, network id, identity.
	ResponseLen = magicLen + 1 + NonceLen + 32 + 32
	magicLen    = 7
	// NonceLen is the length of the asker's nonce, echoed so that answers match questions.
	NonceLen = 16

	kindRequest  = 1
	kindResponse = 2
)

// magic starts every whois datagram; it cannot be mistaken for a link packet (whose first byte is
// its type, 1 to 5) or a STUN message (whose first two bits are zero).
var magic = []byte("\xeeMVWHO1")[:magicLen]

// ErrNotWhois is returned for a datagram that is not a whois message.
var ErrNotWhois = errors.New("whois: not a whois message")

// IsWhois reports whether b starts like a whois message.
func IsWhois(b []byte) bool { return bytes.HasPrefix(b, magic) }

// Request returns a request carrying nonce.
func Request(nonce [NonceLen]byte) []byte {
	b := make([]byte, RequestLen)
	n := copy(b, magic)
	b[n] = kindRequest
	copy(b[n+1:], nonce[:])
	return b
}

// Answer returns the response to a request, or an error if b is not a well-formed request (which gets
// no answer).
func Answer(b []byte, network [32]byte, id keys.IdentityPublic) ([]byte, error) {
	if len(b) != RequestLen || !IsWhois(b) || b[len(magic)] != kindRequest {
		return nil, ErrNotWhois
	}
	for _, x := range b[len(magic)+1+NonceLen:] {
		if x != 0 {
			return nil, ErrNotWhois
		}
	}
	out := make([]byte, 0, ResponseLen)
	out = append(out, magic...)
	out = append(out, kindResponse)
	out = append(out, b[len(magic)+1:len(magic)+1+NonceLen]...)
	out = append(out, network[:]...)
	return append(out, id[:]...), nil
}

// ParseAnswer reads a response to the request with nonce and returns the network and identity the
// relay named.
func ParseAnswer(b []byte, nonce [NonceLen]byte) (network [32]byte, id keys.IdentityPublic, err error) {
	if len(b) != ResponseLen || !IsWhois(b) || b[len(magic)] != kindResponse {
		return network, id, ErrNotWhois
	}
	p := b[len(magic)+1:]
	if !bytes.Equal(p[:NonceLen], nonce[:]) {
		return network, id, errors.New("whois: answer to another request")
	}
	copy(network[:], p[NonceLen:NonceLen+32])
	copy(id[:], p[NonceLen+32:])
	return network, id, nil
}
