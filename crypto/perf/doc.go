// Package perf measures the crypto module for `make bench`: the raw AEAD rates at the full cell size,
// the per-hop layer operations beside them, handshakes per second and allocations per cell, all in one
// run so that the ratios compare like with like. It has no code of its own outside its tests.
package perf
