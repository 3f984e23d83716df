package client

// countGaps adds to the client's counts what the backward layer of the circuit's last hop skipped or
// filled since the last cell (onion.Gaps): the cells the exit sent that did not arrive. Only the last
// hop's layer counts, since every cell it seals passes every hop; a hop's gaps while the circuit was
// still shorter do not. While no cell goes missing it costs one comparison per cell. The caller holds
// circ.bwdMu.
func (circ *Circuit) countGaps() {
	g := circ.layers.Gaps(len(circ.path))
	if g == circ.gaps {
		return
	}
	circ.c.gapSkipped.Add(g.Skipped - circ.gaps.Skipped)
	circ.c.gapLate.Add(g.Late - circ.gaps.Late)
	circ.gaps = g
}
