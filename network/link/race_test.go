//go:build race

package link

// raceEnabled is set when the race detector is on: it makes X25519 about ten times slower and makes
// sync.Pool drop items at random, so tests that do thousands of handshakes sample, and allocation tests
// of pooled paths skip.
const raceEnabled = true
