//go:build race

package wgbaseline

// minRate is the least TestMeasure accepts. The race detector slows wireguard-go some thirtyfold
// (2.5 Gbit/s becomes 55–90 Mbit/s on two cores), so a floor that catches a broken tunnel without it
// would fail a healthy one with it.
const minRate = 10e6
