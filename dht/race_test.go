//go:build race

package dht

// raceEnabled tells tests that the race detector slows everything down several times.
const raceEnabled = true
