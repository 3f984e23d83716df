package relay

// countGaps adds to the relay's counts what the forward layer of c, a circuit that ends here, skipped
// or filled since its last cell (onion.Gaps): the cells its client sent that did not arrive. While no
// cell goes missing it costs one comparison per cell. The caller holds c.fwdMu.
func (r *Relay) countGaps(c *circuit) {
	g := c.hop.Gaps()
	if g == c.gaps {
		return
	}
	r.stats.gapSkipped.Add(g.Skipped - c.gaps.Skipped)
	r.stats.gapLate.Add(g.Late - c.gaps.Late)
	c.gaps = g
}
