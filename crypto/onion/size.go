package onion

import (
	"errors"
	"fmt"
)

const (
	// FullSize is the body length of a full cell: the largest body whose link packet still fits one
	// 1500-byte IPv6 datagram (docs/protocol.md has the arithmetic).
	FullSize = 1408
	// SmallSize is the body length of a small cell: circuit control and packets up to TCP-ACK and DNS
	// size, so that most of the packets of an interactive flow do not pay for a full cell.
	SmallSize = 256
	// MaxHops bounds the layers of one circuit.
	MaxHops = 8
	// MinPayload is the smallest payload a cell class must leave at MaxHops.
	MinPayload = 16
)

// DefaultSizes are the default cell size classes, smallest first.
var DefaultSizes = Sizes{SmallSize, FullSize}

// Sizes is a network's set of cell body size classes, smallest first. Every cell of every circuit has
// one of these lengths on every link.
type Sizes []int

// Validate reports every problem with the classes at once.
func (s Sizes) Validate() error {
	var errs []error
	if len(s) == 0 {
		errs = append(errs, errors.New("no cell size classes"))
	}
	for i, n := range s {
		if n < MaxHops*Overhead+MinPayload {
			errs = append(errs, fmt.Errorf("cell size %d is below the minimum %d", n, MaxHops*Overhead+MinPayload))
		}
		if n > FullSize {
			errs = append(errs, fmt.Errorf("cell size %d is above the maximum %d (it would not fit one datagram)", n, FullSize))
		}
		if i > 0 && n <= s[i-1] {
			errs = append(errs, fmt.Errorf("cell sizes must increase: %d follows %d", n, s[i-1]))
		}
	}
	return errors.Join(errs...)
}

// For returns the smallest class whose cells carry payloadLen bytes to a hop at depth hop, and false if
// none does.
func (s Sizes) For(payloadLen, hop int) (int, bool) {
	for _, n := range s {
		if PayloadLen(n, hop) >= payloadLen {
			return n, true
		}
	}
	return 0, false
}

// PayloadLen returns how many payload bytes a cell of length cellLen carries to or from the hop at
// depth hop (1 is the first hop): the cell less one layer's overhead per hop up to and including it.
func PayloadLen(cellLen, hop int) int { return cellLen - hop*Overhead }

// checkLen returns ErrMalformed unless a cell of length cellLen can carry layers for depth hops.
func checkLen(cellLen, depth int) error {
	if depth < 1 || depth > MaxHops || cellLen < depth*Overhead+MinPayload || cellLen > FullSize {
		return fmt.Errorf("%w: %d-byte cell at depth %d", ErrMalformed, cellLen, depth)
	}
	return nil
}

// allZero reports whether b is all zero bytes.
func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
