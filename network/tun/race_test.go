//go:build race

package tun

// raceEnabled is set when the race detector is on: it allocates behind the code's back, so
// allocation tests skip.
const raceEnabled = true
