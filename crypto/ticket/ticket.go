// Package ticket is the exit session credential: what lets a client move its exit session (its
// address at the exit and its open connections) to a new circuit, and what lets nobody else do it.
//
// A session's credential is never sent. It starts as a key derived from the binding secret of the
// circuit that opened the session — a value of that circuit's handshake with the exit (onion.HopKeys
// Binding) that only the client and the exit know. To re-attach, the client sends on the new circuit the
// session's id and a MAC under the credential over the id and the new circuit's binding: a hop that
// sees it (it cannot: it travels inside the exit's layer) could not replay it on any other circuit, and
// it says nothing about the credential. Both ends then replace the credential with one derived from it
// and the new binding, so each credential re-attaches once; the exit keeps the previous one valid only
// until the client shows it has the next (see exit/session).
package ticket

import (
	"crypto/hmac"
	"crypto/rand"
	"io"

	"github.com/meshvpn/meshvpn/crypto/kdf"
)

// IDLen is the length of a session id.
const IDLen = 16

// ID names a session at its exit. It is not secret from the exit, and proves nothing by itself.
type ID [IDLen]byte

// Key is a session's credential.
type Key [32]byte

// Binding is a circuit's binding secret with its exit (onion.HopKeys.Binding of the last hop).
type Binding = [32]byte

// Ticket is what a client keeps of its session: the id and the current credential.
type Ticket struct {
	ID  ID
	Key Key
}

// NewID returns a random session id.
func NewID(r io.Reader) (ID, error) {
	if r == nil {
		r = rand.Reader
	}
	var id ID
	_, err := io.ReadFull(r, id[:])
	return id, err
}

// Open returns a session's first credential, from the binding of the circuit that opened it.
func Open(id ID, b Binding) Key {
	return Key(kdf.Keyed(b[:], kdf.TicketOpen, id[:]))
}

// Proof is the MAC a client sends to re-attach session id on the circuit whose binding is b.
func Proof(k Key, id ID, b Binding) [32]byte {
	return kdf.Keyed(k[:], kdf.TicketProof, id[:], b[:])
}

// Verify reports, in constant time, whether proof is Proof(k, id, b).
func Verify(k Key, id ID, b Binding, proof [32]byte) bool {
	want := Proof(k, id, b)
	return hmac.Equal(want[:], proof[:])
}

// Next returns the credential that replaces k once it has re-attached the session on the circuit
// whose binding is b.
func Next(k Key, b Binding) Key {
	return Key(kdf.Keyed(k[:], kdf.TicketNext, b[:]))
}
