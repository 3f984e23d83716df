//go:build !race

package wgbaseline

// minRate is the least TestMeasure accepts.
const minRate = 50e6
