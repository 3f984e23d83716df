// Package relaytest turns a relay hostile, for tests that attack the protocol with a relay the
// adversary runs. It is test support, like net/http/httptest: no binary the project ships imports
// it, and nothing in relay.Config reaches it.
package relaytest

import (
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/core/relay/internal/hook"
)

// Tamper makes r give every RELAY cell it is about to queue (header included, after its own layer
// work; forward is true for cells going away from the client) to f, and queue what f returns
// instead: nothing, the cell, modified copies, cells held from earlier. f is called from the relay's
// reading goroutines, concurrently; msg is valid only during the call (copy what is held), and what f
// returns is copied before it returns to the relay. A nil f makes r honest again.
func Tamper(r *relay.Relay, f func(forward bool, msg []byte) [][]byte) {
	hook.SetTamper(r, f)
}
