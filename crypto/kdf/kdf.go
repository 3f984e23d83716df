// Package kdf holds MeshVPN's key derivation: HKDF-SHA256 and HMAC-SHA256 under domain-separation
// labels. Every label the protocol uses is a constant here, so that no two uses of a secret can collide
// and docs/protocol.md can list them from one place.
package kdf

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Labels. Each names the protocol, its version and the one purpose a derived value serves. Changing any
// of them is a protocol version change.
const (
	// NtorProtoID binds the circuit handshake's transcript to this protocol and version.
	NtorProtoID = "meshvpn-ntor-x25519-sha256-v1"
	// NtorKey keys the HMAC that turns the handshake secret into the hop's key seed.
	NtorKey = NtorProtoID + ":key_extract"
	// NtorVerify keys the HMAC that gives the intermediate value both sides fold into the confirmation tag.
	NtorVerify = NtorProtoID + ":verify"
	// NtorMAC keys the HMAC that computes the relay's key confirmation tag.
	NtorMAC = NtorProtoID + ":mac"
	// NtorExpand is the HKDF info prefix for expanding the key seed into the hop's layer keys; the chosen
	// cipher suite follows it, so that keys for different suites are unrelated.
	NtorExpand = NtorProtoID + ":key_expand"
	// NtorServer ends the relay's authentication input, as in Tor's ntor ("Server").
	NtorServer = "Server"
	// NtorBinding is the HKDF info for the hop's binding secret: keyed into the exit session
	// credential, never into a layer key.
	NtorBinding = NtorProtoID + ":binding"
	// TicketOpen derives an exit session's first credential from the binding of the circuit that
	// opened it.
	TicketOpen = "meshvpn-ticket-v1:open"
	// TicketProof is the MAC by which a client proves, on a new circuit, that it holds a session's
	// credential; it covers the session's id and the new circuit's binding.
	TicketProof = "meshvpn-ticket-v1:proof"
	// TicketNext derives a session's next credential from the one just used and the new circuit's
	// binding: each credential re-attaches once.
	TicketNext = "meshvpn-ticket-v1:next"
	// LayerRatchet is the HKDF info for replacing one direction's layer key with the next generation's.
	LayerRatchet = "meshvpn-layer-v1:ratchet"
)

// MAC returns HMAC-SHA256 keyed with label over the concatenation of parts.
func MAC(label string, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, []byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Expand derives n bytes from a pseudorandom key prk (32 uniformly random bytes, such as a MAC output)
// with HKDF-Expand-SHA256 under info.
func Expand(prk []byte, info string, n int) ([]byte, error) {
	out, err := hkdf.Expand(sha256.New, prk, info, n)
	if err != nil {
		return nil, fmt.Errorf("hkdf expand %q: %w", info, err)
	}
	return out, nil
}

// Keyed returns HMAC-SHA256 keyed with key over label, a zero byte, and the concatenation of parts:
// a MAC under a secret key, domain-separated by label.
func Keyed(key []byte, label string, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}
