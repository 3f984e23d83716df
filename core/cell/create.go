package cell

import (
	"fmt"

	"github.com/meshvpn/meshvpn/crypto/ntor"
)

// HandshakeNtor is the handshake type of the ntor-style circuit handshake (package crypto/ntor).
const HandshakeNtor = 1

// CreateLen is the length of a CREATE body's meaningful part: handshake type, depth, client message.
const CreateLen = 2 + ntor.ClientMessageLen

// CreatedLen is the length of a CREATED body's meaningful part: the relay's reply.
const CreatedLen = ntor.ServerMessageLen

// CreateBody is the body of a CREATE cell.
type CreateBody struct {
	// Depth is the position the new hop will have in the circuit (1 for the first hop). It tells the hop
	// how many layers of padding its cells carry; a hop given a false depth cannot open any cell.
	Depth     uint8
	Handshake []byte // ntor client message
}

// Encode writes the body into b (a whole cell body, zero-padded) and returns an error if it does not fit.
func (c *CreateBody) Encode(b []byte) error {
	if len(c.Handshake) != ntor.ClientMessageLen || len(b) < CreateLen {
		return fmt.Errorf("create: %d-byte handshake into a %d-byte body", len(c.Handshake), len(b))
	}
	clear(b)
	b[0] = HandshakeNtor
	b[1] = c.Depth
	copy(b[2:], c.Handshake)
	return nil
}

// DecodeCreate parses a CREATE body. The handshake aliases body.
func DecodeCreate(body []byte) (CreateBody, error) {
	if len(body) < CreateLen {
		return CreateBody{}, fmt.Errorf("%w: %d-byte create", ErrMalformed, len(body))
	}
	if body[0] != HandshakeNtor {
		return CreateBody{}, fmt.Errorf("%w: handshake type %d", ErrMalformed, body[0])
	}
	if body[1] == 0 {
		return CreateBody{}, fmt.Errorf("%w: depth 0", ErrMalformed)
	}
	if !zero(body[CreateLen:]) {
		return CreateBody{}, fmt.Errorf("%w: create padding", ErrMalformed)
	}
	return CreateBody{Depth: body[1], Handshake: body[2:CreateLen]}, nil
}

// EncodeCreated writes a CREATED body holding the relay's reply into b.
func EncodeCreated(b, reply []byte) error {
	if len(reply) != ntor.ServerMessageLen || len(b) < CreatedLen {
		return fmt.Errorf("created: %d-byte reply into a %d-byte body", len(reply), len(b))
	}
	clear(b)
	copy(b, reply)
	return nil
}

// DecodeCreated returns the relay's reply in a CREATED body (aliasing it).
func DecodeCreated(body []byte) ([]byte, error) {
	if len(body) < CreatedLen || !zero(body[CreatedLen:]) {
		return nil, fmt.Errorf("%w: created body", ErrMalformed)
	}
	return body[:CreatedLen], nil
}

// EncodeDestroy writes a DESTROY body with reason into b.
func EncodeDestroy(b []byte, reason DestroyReason) {
	clear(b)
	b[0] = byte(reason)
}

// DecodeDestroy returns the reason in a DESTROY body. A reason byte this version does not know is
// refused (ErrDestroyReason) rather than passed on: no byte of a DESTROY carries anything but one of
// the reasons above.
func DecodeDestroy(body []byte) (DestroyReason, error) {
	if len(body) < 1 || !zero(body[1:]) {
		return 0, errDestroyBody
	}
	if DestroyReason(body[0]) > maxReason {
		return 0, ErrDestroyReason
	}
	return DestroyReason(body[0]), nil
}

// ErrDestroyReason is the error of a DESTROY whose reason is none of the known ones. It wraps
// ErrMalformed.
var ErrDestroyReason = fmt.Errorf("%w: unknown destroy reason", ErrMalformed)

// errDestroyBody is made once so that refusing a bad DESTROY allocates nothing.
var errDestroyBody = fmt.Errorf("%w: destroy body", ErrMalformed)

// zero reports whether b is all zero bytes. It compares against a block of zeros, which runs at memory
// speed (a byte loop cost ~0.4 µs on a full cell's padding, as much as opening a layer); the padding is
// not secret, so the comparison need not be constant-time.
func zero(b []byte) bool {
	for len(b) > len(zeros) {
		if string(b[:len(zeros)]) != string(zeros[:]) {
			return false
		}
		b = b[len(zeros):]
	}
	return string(b) == string(zeros[:len(b)])
}

var zeros [2048]byte
