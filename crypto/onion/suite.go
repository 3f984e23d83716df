package onion

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Suite names the AEAD that protects one hop's layer. Each hop of a circuit negotiates its own in the
// circuit handshake.
type Suite uint8

const (
	// ChaCha20Poly1305 is the default suite: fast everywhere, constant time without hardware support.
	ChaCha20Poly1305 Suite = 1
	// AES256GCM is about 1.8 times faster than ChaCha20-Poly1305 on CPUs with AES and carry-less
	// multiply instructions, and slow and cache-timing-prone without them, so it is offered only there.
	AES256GCM Suite = 2
)

// KeySize is the length of every suite's key.
const KeySize = 32

// Valid reports whether s is a suite this implementation knows.
func (s Suite) Valid() bool { return s == ChaCha20Poly1305 || s == AES256GCM }

// String returns the suite's name.
func (s Suite) String() string {
	switch s {
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	case AES256GCM:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("suite(%d)", uint8(s))
}

// NewAEAD returns the suite's AEAD keyed with key.
func (s Suite) NewAEAD(key []byte) (cipher.AEAD, error) {
	switch s {
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	case AES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return nil, fmt.Errorf("onion: unknown suite %d", uint8(s))
}

// SuiteSet is a set of suites, one bit each, as it travels in the circuit handshake. Unknown bits are
// kept so that an older relay can ignore suites a newer client offers.
type SuiteSet uint8

// SuitesOf returns the set holding the given suites.
func SuitesOf(suites ...Suite) SuiteSet {
	var set SuiteSet
	for _, s := range suites {
		set |= SuiteSet(1) << (s - 1)
	}
	return set
}

// Has reports whether s is in the set.
func (set SuiteSet) Has(s Suite) bool {
	return s >= 1 && s <= 8 && set&(SuiteSet(1)<<(s-1)) != 0
}

// Len returns how many suites the set holds.
func (set SuiteSet) Len() int { return bits.OnesCount8(uint8(set)) }

// Choose returns the first suite of prefs that is in the set and that this implementation knows.
func (set SuiteSet) Choose(prefs []Suite) (Suite, bool) {
	for _, s := range prefs {
		if s.Valid() && set.Has(s) {
			return s, true
		}
	}
	return 0, false
}

// HardwareAES reports whether this CPU has the instructions that make AES-256-GCM fast and
// constant time.
func HardwareAES() bool {
	return (cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) || (cpu.ARM64.HasAES && cpu.ARM64.HasPMULL)
}

// DefaultOffer is the set a client offers unless configured otherwise: ChaCha20-Poly1305 alone, the
// product's default. A client that opts into AES-256-GCM should offer it only when HardwareAES is true.
func DefaultOffer() SuiteSet { return SuitesOf(ChaCha20Poly1305) }

// RelayPreference is the order in which a relay picks among the suites a client offers: AES-256-GCM
// first where the hardware makes it faster, ChaCha20-Poly1305 otherwise.
func RelayPreference() []Suite {
	if HardwareAES() {
		return []Suite{AES256GCM, ChaCha20Poly1305}
	}
	return []Suite{ChaCha20Poly1305}
}
