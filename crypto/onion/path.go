package onion

import "fmt"

// Path is a client's layer state for one circuit: one entry per hop, first hop first. It is not safe
// for concurrent use by the same direction; Wrap and Unwrap touch different state and may run at once.
type Path struct {
	fwd []*sealer
	bwd []*opener
}

// AddHop appends the next hop's keys, as a circuit grows by one EXTEND.
func (p *Path) AddHop(keys HopKeys) error {
	if len(p.fwd) == MaxHops {
		return fmt.Errorf("onion: circuit already has %d hops", MaxHops)
	}
	fwd, err := newSealer(keys.Suite, keys.Forward)
	if err != nil {
		return err
	}
	bwd, err := newOpener(keys.Suite, keys.Backward)
	if err != nil {
		return err
	}
	p.fwd = append(p.fwd, fwd)
	p.bwd = append(p.bwd, bwd)
	return nil
}

// Hops returns how many hops the path has.
func (p *Path) Hops() int { return len(p.fwd) }

// Wrap seals a forward cell addressed to hop (1 for the first hop, Hops() for the last), in place. The
// caller has written the payload into cell[:PayloadLen(len(cell), hop)]; the rest is overwritten.
func (p *Path) Wrap(cell []byte, hop int) error {
	if hop < 1 || hop > len(p.fwd) {
		return fmt.Errorf("onion: no hop %d on a %d-hop path", hop, len(p.fwd))
	}
	if err := checkLen(len(cell), hop); err != nil {
		return err
	}
	clear(cell[len(cell)-(hop-1)*Overhead:])
	domain := uint32(domainTerminal)
	for d := hop; d >= 1; d-- {
		if err := p.fwd[d-1].seal(cell[:len(cell)-(d-1)*Overhead], domain); err != nil {
			return err
		}
		domain = domainOnward
	}
	return nil
}

// Unwrap removes layers from a backward cell until it reaches the hop that sent it, and returns that
// hop's depth and the payload. scratch must be as long as cell and not overlap it; the payload is a
// prefix of one of the two. Any modification of the cell on the way is caught here at the latest.
func (p *Path) Unwrap(cell, scratch []byte) (int, []byte, error) {
	if len(p.bwd) == 0 {
		return 0, nil, fmt.Errorf("onion: path has no hops")
	}
	if err := checkLen(len(cell), 1); err != nil {
		return 0, nil, err
	}
	if len(scratch) != len(cell) {
		return 0, nil, fmt.Errorf("%w: scratch %d bytes for a %d-byte cell", ErrMalformed, len(scratch), len(cell))
	}
	src, dst := cell, scratch
	for d := 1; d <= len(p.bwd); d++ {
		if len(cell) < d*Overhead+MinPayload {
			break
		}
		region := src[:len(cell)-(d-1)*Overhead]
		if d < len(p.bwd) {
			err := p.bwd[d-1].open(dst, region, domainOnward)
			if err == nil {
				src, dst = dst, src
				continue
			}
			if err != ErrAuth {
				return 0, nil, fmt.Errorf("hop %d: %w", d, err)
			}
		}
		if err := p.bwd[d-1].open(dst, region, domainTerminal); err != nil {
			return 0, nil, fmt.Errorf("hop %d: %w", d, err)
		}
		return d, dst[:len(region)-Overhead], nil
	}
	return 0, nil, fmt.Errorf("%w: no layer ended the cell", ErrAuth)
}

// Rotate replaces the forward key towards hop with its next generation now (the sender's side of the
// hourly key rotation; the byte budget rotates by itself).
func (p *Path) Rotate(hop int) error {
	if hop < 1 || hop > len(p.fwd) {
		return fmt.Errorf("onion: no hop %d on a %d-hop path", hop, len(p.fwd))
	}
	return p.fwd[hop-1].rotate()
}
