// Package cell is the wire format of circuit cells: the link-level cell (a circuit id, a command and a
// fixed-size body, carried inside one encrypted link packet) and the relay messages a hop reads from,
// or writes into, an onion payload. Encoding and decoding are pure functions; they never touch sockets,
// clocks or keys.
package cell

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/meshvpn/meshvpn/crypto/onion"
)

// Command is a link-level cell's command. It is visible only to the two ends of one link (link
// encryption hides it from everyone else).
type Command uint8

const (
	// Padding cells are discarded by the receiving relay; they exist to shape traffic.
	Padding Command = 0
	// Create opens a circuit at the receiving relay: the body holds a circuit handshake.
	Create Command = 1
	// Created answers Create with the relay's half of the handshake.
	Created Command = 2
	// Relay carries an onion cell along an open circuit, in either direction.
	Relay Command = 3
	// Destroy tears a circuit down; it travels both ways from where it starts.
	Destroy Command = 4
)

func (c Command) String() string {
	switch c {
	case Padding:
		return "PADDING"
	case Create:
		return "CREATE"
	case Created:
		return "CREATED"
	case Relay:
		return "RELAY"
	case Destroy:
		return "DESTROY"
	}
	return fmt.Sprintf("command(%d)", uint8(c))
}

// HeaderLen is the length of a link-level cell header: circuit id (4) and command (1).
const HeaderLen = 5

// ErrMalformed is wrapped by every decoding error, so callers can count them under one reason.
var ErrMalformed = errors.New("cell: malformed")

// ID is a circuit id. It is chosen per link: the same circuit has unrelated ids on its two links, and
// the two ends of a link draw from disjoint halves (the top bit) so they never collide.
type ID uint32

// Header is a decoded link-level cell header.
type Header struct {
	Circuit ID
	Command Command
}

// PutHeader writes h into the first HeaderLen bytes of b.
func PutHeader(b []byte, h Header) {
	binary.BigEndian.PutUint32(b, uint32(h.Circuit))
	b[4] = byte(h.Command)
}

// Parse splits a link message into its header and body, checking that the body is one of the size
// classes and the circuit id is not zero. The body aliases msg. Its errors are made once, so that a
// relay fed garbage allocates nothing.
func Parse(msg []byte, sizes onion.Sizes) (Header, []byte, error) {
	if len(msg) < HeaderLen {
		return Header{}, nil, errShortCell
	}
	h := Header{Circuit: ID(binary.BigEndian.Uint32(msg)), Command: Command(msg[4])}
	body := msg[HeaderLen:]
	if h.Circuit == 0 && h.Command != Padding {
		return h, nil, errCircuitZero
	}
	if h.Command > Destroy {
		return h, nil, errCommand
	}
	if !slices.Contains(sizes, len(body)) {
		return h, nil, errSizeClass
	}
	return h, body, nil
}

var (
	errShortCell   = fmt.Errorf("%w: cell shorter than its header", ErrMalformed)
	errCircuitZero = fmt.Errorf("%w: circuit id 0", ErrMalformed)
	errCommand     = fmt.Errorf("%w: unknown command", ErrMalformed)
	errSizeClass   = fmt.Errorf("%w: body is no size class", ErrMalformed)
)

// DestroyReason says why a circuit was torn down. It travels in DESTROY cells.
type DestroyReason uint8

const (
	ReasonNone        DestroyReason = 0  // no reason given
	ReasonProtocol    DestroyReason = 1  // a protocol violation: malformed cell, unexpected command
	ReasonInternal    DestroyReason = 2  // the relay failed internally
	ReasonRequested   DestroyReason = 3  // the client closed the circuit
	ReasonTimeout     DestroyReason = 4  // a build step or the circuit timed out
	ReasonLinkDown    DestroyReason = 5  // a link of the circuit died or could not be made
	ReasonResource    DestroyReason = 6  // the relay is out of circuits, memory or handshake capacity
	ReasonAuth        DestroyReason = 7  // a cell failed authentication: tampering or a broken hop
	ReasonIdle        DestroyReason = 8  // the circuit carried nothing for too long
	ReasonHandshake   DestroyReason = 9  // the circuit handshake failed (unknown key, no common suite)
	ReasonUnreachable DestroyReason = 10 // the next relay could not be reached
	// ReasonDestroyed is the one reason a relay gives when it passes on a teardown it did not start, and
	// the reason of every DESTROY it sends away from the client: the reason byte would otherwise be a
	// channel between the relays at the two ends of a circuit, through the honest ones between them.
	ReasonDestroyed DestroyReason = 11
)

// maxReason is the highest reason DecodeDestroy accepts.
const maxReason = ReasonDestroyed

func (r DestroyReason) String() string {
	names := [...]string{"none", "protocol", "internal", "requested", "timeout", "link-down", "resource",
		"auth", "idle", "handshake", "unreachable", "destroyed"}
	if int(r) < len(names) {
		return names[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Error is the error a torn-down circuit reports.
type Error struct {
	Reason DestroyReason
	// Remote is true when the reason came in a DESTROY from elsewhere rather than being found here.
	Remote bool
}

func (e *Error) Error() string {
	if e.Remote {
		return "circuit destroyed by a relay: " + e.Reason.String()
	}
	return "circuit destroyed: " + e.Reason.String()
}

// IDBit returns the top bit that this end of a link sets in the circuit ids it chooses: the end whose
// link key sorts first takes the upper half. Both ends compute the same split without a message.
func IDBit(local, peer [32]byte) ID {
	if bytes.Compare(local[:], peer[:]) < 0 {
		return 1 << 31
	}
	return 0
}

// ChosenBy reports whether id lies in the half that the end with the given top bit chooses from.
func (id ID) ChosenBy(bit ID) bool { return id&(1<<31) == bit }
