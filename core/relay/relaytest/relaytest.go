// Package relaytest turns a relay hostile, for tests that attack the protocol with a relay the
// adversary runs. It is test support, like net/http/httptest: no binary the project ships imports
// it, and nothing in relay.Config reaches it.
package relaytest

import (
	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/core/relay/internal/hook"
)

// Tamper makes r give every RELAY cell it is about to queue (header included, after its own layer
// work; forward is true for cells going away from the client) to f, and queue what f returns
// instead: nothing, the cell, modified copies, cells held from earlier. f is called from the relay's
// reading goroutines, concurrently; msg is valid only during the call (copy what is held), and what f
// returns is copied before it returns to the relay. A nil f makes r honest again.
func Tamper(r *relay.Relay, f func(forward bool, msg []byte) [][]byte) {
	if f == nil {
		hook.SetTamper(r, nil)
		return
	}
	hook.SetTamper(r, func(forward bool, msg []byte, _ func(cell.MsgType, []byte) error) [][]byte { return f(forward, msg) })
}

// Hostile is Tamper with one more power: originate sends, on the circuit of the cell in hand, a relay
// message of f's choosing towards the client, sealed under r's own layer — as a hostile guard or middle
// can on any circuit through it (an EXTENDED or a BEGUN it made up, say). The message originated is
// itself given to f (as a backward cell) before it is queued.
func Hostile(r *relay.Relay, f func(forward bool, msg []byte, originate func(t cell.MsgType, data []byte) error) [][]byte) {
	hook.SetTamper(r, f)
}
