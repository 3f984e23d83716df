package onion

// Gaps counts the holes in one layer's counters as its receiver saw them. Every cell a sender seals
// takes the next counter, so a counter that never arrives is a cell lost or dropped somewhere after it
// was sealed: on a link, or by a hop that chose to drop it. Hops forward cells whose later layers they
// cannot read, so a hop that drops cells in a pattern writes that pattern, without noise from its own
// side, into the counters the far end reads (docs/threat-model.md, "Dropped cells as a watermark");
// counting the gaps at the ends at least shows that it happens.
//
// Skipped counts the counters jumped over when a later counter arrived; Late counts those that
// arrived afterwards all the same (reordered, not lost). Skipped - Late were never received. Cells
// lost after the last one received, at the end of a key generation or of the circuit, leave no gap.
type Gaps struct {
	Skipped, Late uint64
}

// Missing returns how many skipped counters have not arrived.
func (g Gaps) Missing() uint64 { return g.Skipped - g.Late }

// Gaps returns the gaps in this hop's forward layer: cells the client sealed for or through this hop
// that have not reached it. The caller serializes it with Peel.
func (h *Hop) Gaps() Gaps { return h.fwd.gaps }

// Gaps returns the gaps in hop's backward layer (1 for the first hop): cells that hop sealed that have
// not reached the client. The caller serializes it with Unwrap. It is zero for a hop the path does not
// have.
func (p *Path) Gaps(hop int) Gaps {
	if hop < 1 || hop > len(p.bwd) {
		return Gaps{}
	}
	return p.bwd[hop-1].gaps
}
