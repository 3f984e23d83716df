package cell

import (
	"fmt"

	"github.com/meshvpn/meshvpn/crypto/ticket"
)

// BeginLen is the length of a BEGIN message's data: mode (1), session id (16), proof (32).
const BeginLen = 1 + ticket.IDLen + 32

// BegunLen is the length of a BEGUN message's data: status (1), session id (16).
const BegunLen = 1 + ticket.IDLen

// Begin is the data of a BEGIN message: a new session (Reattach false: id and proof are zero), or the
// session ID re-attached to this circuit with ticket.Proof of its credential over this circuit's
// binding.
type Begin struct {
	Reattach bool
	ID       ticket.ID
	Proof    [32]byte
}

// Encode returns the BEGIN data. A new session's id and proof are written as zeros.
func (b *Begin) Encode() []byte {
	out := make([]byte, BeginLen)
	if b.Reattach {
		out[0] = 1
		copy(out[1:], b.ID[:])
		copy(out[1+ticket.IDLen:], b.Proof[:])
	}
	return out
}

// DecodeBegin parses BEGIN data.
func DecodeBegin(b []byte) (Begin, error) {
	var m Begin
	if len(b) != BeginLen {
		return m, fmt.Errorf("%w: %d-byte begin", ErrMalformed, len(b))
	}
	switch b[0] {
	case 0:
		if !zero(b[1:]) {
			return m, fmt.Errorf("%w: a new session's begin carries an id or a proof", ErrMalformed)
		}
	case 1:
		m.Reattach = true
		copy(m.ID[:], b[1:])
		copy(m.Proof[:], b[1+ticket.IDLen:])
	default:
		return m, fmt.Errorf("%w: begin mode %d", ErrMalformed, b[0])
	}
	return m, nil
}

// Begun is the data of a BEGUN message: the session's id, and Kept when it is the session the BEGIN
// asked to re-attach (false: a new session, the old one being gone or the proof refused).
type Begun struct {
	Kept bool
	ID   ticket.ID
}

// Encode returns the BEGUN data.
func (b *Begun) Encode() []byte {
	out := make([]byte, BegunLen)
	if b.Kept {
		out[0] = 1
	}
	copy(out[1:], b.ID[:])
	return out
}

// DecodeBegun parses BEGUN data.
func DecodeBegun(b []byte) (Begun, error) {
	var m Begun
	if len(b) != BegunLen {
		return m, fmt.Errorf("%w: %d-byte begun", ErrMalformed, len(b))
	}
	if b[0] > 1 {
		return m, fmt.Errorf("%w: begun status %d", ErrMalformed, b[0])
	}
	m.Kept = b[0] == 1
	copy(m.ID[:], b[1:])
	return m, nil
}
