// Package hook is the one way into a relay's test hooks. Being internal to core/relay, only the relay
// and core/relay/relaytest can import it, so no operator's configuration and no production caller
// can reach what it installs.
package hook

import "github.com/meshvpn/meshvpn/core/cell"

// Tamper is given every RELAY cell a relay is about to queue (header included, after its own layer
// work; forward is true for cells going away from the client) and returns what to queue instead.
// originate sends, on the cell's circuit, a relay message of the hostile relay's choosing towards the
// client, sealed under the relay's own layer: what a hostile hop can do on any circuit through it.
type Tamper func(forward bool, msg []byte, originate func(t cell.MsgType, data []byte) error) [][]byte

// SetTamper installs t on a *relay.Relay (nil removes it). Package relay sets this variable when it
// is initialised.
var SetTamper func(relay any, t Tamper)
