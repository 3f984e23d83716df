package onion

import "fmt"

// HopKeys are one hop's layer keys, as the circuit handshake derives them.
type HopKeys struct {
	Suite    Suite
	Forward  [KeySize]byte // client to relay
	Backward [KeySize]byte // relay to client
	// Binding is a secret of the same handshake that keys nothing in the onion layer: the exit session
	// credential (crypto/ticket) binds to it, so that only the client and this hop can prove they were
	// the two ends of this circuit. No other hop ever learns it.
	Binding [32]byte
}

// Disposition says what a relay does with a forward cell after removing its layer.
type Disposition uint8

const (
	// Onward means the cell passes to the next hop.
	Onward Disposition = iota + 1
	// Here means the cell is addressed to this hop.
	Here
)

// Hop is a relay's layer state for one circuit: it removes its layer from forward cells and adds it to
// backward cells. Peel touches only forward state and Wrap/Originate only backward state, so the two
// directions may run concurrently; each direction needs its caller's serialization.
type Hop struct {
	depth int
	fwd   *opener
	bwd   *sealer
}

// NewHop returns the layer state of a relay at depth (1 for the first hop) of a circuit.
func NewHop(keys HopKeys, depth int) (*Hop, error) {
	if depth < 1 || depth > MaxHops {
		return nil, fmt.Errorf("onion: hop depth %d outside 1..%d", depth, MaxHops)
	}
	fwd, err := newOpener(keys.Suite, keys.Forward)
	if err != nil {
		return nil, err
	}
	bwd, err := newSealer(keys.Suite, keys.Backward)
	if err != nil {
		return nil, err
	}
	return &Hop{depth: depth, fwd: fwd, bwd: bwd}, nil
}

// Depth returns the hop's position in the circuit, 1 for the first hop.
func (h *Hop) Depth() int { return h.depth }

// PayloadLen returns how many payload bytes a cell of length cellLen carries to or from this hop.
func (h *Hop) PayloadLen(cellLen int) int { return PayloadLen(cellLen, h.depth) }

// Peel removes this hop's layer from the forward cell src, writing the result into dst, which must be
// as long as src and must not overlap it. For Onward, dst is the cell for the next hop; for Here, the
// payload is returned (a prefix of dst). hasNext says whether the circuit goes on past this hop: a last
// hop reads every cell as its own.
func (h *Hop) Peel(dst, src []byte, hasNext bool) (Disposition, []byte, error) {
	if err := checkLen(len(src), h.depth); err != nil {
		return 0, nil, err
	}
	if len(dst) != len(src) {
		return 0, nil, fmt.Errorf("%w: destination %d bytes for a %d-byte cell", ErrMalformed, len(dst), len(src))
	}
	layerEnd := len(src) - (h.depth-1)*Overhead
	if !allZero(src[layerEnd:]) {
		return 0, nil, fmt.Errorf("%w: nonzero padding", ErrMalformed)
	}
	payloadEnd := layerEnd - Overhead
	if hasNext {
		err := h.fwd.open(dst, src[:layerEnd], domainOnward)
		if err == nil {
			clear(dst[payloadEnd:])
			return Onward, dst, nil
		}
		if err != ErrAuth {
			return 0, nil, err
		}
	}
	if err := h.fwd.open(dst, src[:layerEnd], domainTerminal); err != nil {
		return 0, nil, err
	}
	return Here, dst[:payloadEnd], nil
}

// Wrap adds this hop's layer, in place, to a backward cell that came from the next hop.
func (h *Hop) Wrap(cell []byte) error {
	if err := checkLen(len(cell), h.depth+1); err != nil {
		return err
	}
	inner := len(cell) - h.depth*Overhead
	if !allZero(cell[inner:]) {
		return fmt.Errorf("%w: nonzero padding", ErrMalformed)
	}
	return h.bwd.seal(cell[:inner+Overhead], domainOnward)
}

// Originate seals a backward cell that starts at this hop. The caller has written the payload into
// cell[:h.PayloadLen(len(cell))]; the rest of cell is overwritten.
func (h *Hop) Originate(cell []byte) error {
	if err := checkLen(len(cell), h.depth); err != nil {
		return err
	}
	layerEnd := len(cell) - (h.depth-1)*Overhead
	clear(cell[layerEnd:])
	return h.bwd.seal(cell[:layerEnd], domainTerminal)
}

// Rotate replaces this hop's backward key with its next generation now (the sender's side of the
// hourly key rotation; the byte budget rotates by itself).
func (h *Hop) Rotate() error { return h.bwd.rotate() }
