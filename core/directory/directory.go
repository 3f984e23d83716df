// Package directory is the signed directory each discovery authority publishes once a period (its
// "vote" on which relays are usable and how well they perform), the consensus a client computes from
// the votes of a threshold of the authorities named in the genesis file, and the per-authority hash
// chain that lets a client detect a forked or rolled-back directory. Everything here is pure: time is
// passed in, and fetching earlier documents is the caller's function.
package directory

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Limits.
const (
	// MaxEntries bounds a document to about 1.4 MB, twenty times the relays Tor has today.
	MaxEntries = 20_000
	// MaxValidity bounds a document's validity window, so that a captured document stops being
	// accepted by fresh clients (who have no chain to catch a rollback) within a day.
	MaxValidity = 24 * time.Hour
	// MaxSize is the length of a document with MaxEntries entries.
	MaxSize = headerLen + MaxEntries*entryLen + sigLen
)

// Errors, each wrapped by what this package returns, for errors.Is.
var (
	ErrMalformed    = errors.New("directory: malformed")
	ErrTooLarge     = errors.New("directory: too large")
	ErrSignature    = errors.New("directory: bad signature")
	ErrWrongNetwork = errors.New("directory: for another network")
	ErrNoConsensus  = errors.New("directory: too few valid documents for a consensus")
	ErrRollback     = errors.New("directory: rollback")
	ErrFork         = errors.New("directory: fork")
	ErrGap          = errors.New("directory: chain gap too long to walk")
)

// Flags is what an authority says of a relay, a bitmask.
type Flags uint8

const (
	// Running: the authority reached the relay during the period.
	Running Flags = 1 << iota
	// Guard: stable, fast and long enough in the network to be a client's first hop for weeks.
	Guard
	// Exit: the relay's descriptor has an exit summary and exiting through it works.
	Exit
	// Stable: long uptime; suited to long-lived circuits.
	Stable
	// Fast: among the faster relays measured.
	Fast
	// Degraded: measurably unhealthy (loss, latency, failed probes); clients avoid it.
	Degraded

	knownFlags = Running | Guard | Exit | Stable | Fast | Degraded
)

var flagNames = []string{"Running", "Guard", "Exit", "Stable", "Fast", "Degraded"}

// String lists the flags set, "Running|Guard", or "none".
func (f Flags) String() string {
	var names []string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	if f&^knownFlags != 0 {
		names = append(names, fmt.Sprintf("0x%02x", uint8(f&^knownFlags)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Entry is what one document says about one relay.
type Entry struct {
	Identity keys.IdentityPublic
	// Descriptor is the SHA-256 of the relay's descriptor encoding (descriptor.Digest): clients take
	// from the DHT only the descriptor the directory names.
	Descriptor [32]byte
	Flags      Flags
	// Weight is the measured bandwidth weight path selection uses (relative; the authority's scale);
	// 0 means not measured yet.
	Weight uint32
	// LatencyMicros is the measured latency in microseconds; 0 means not measured.
	LatencyMicros uint32
}

// Directory is one authority's signed document for one period. Parse returns only documents that
// satisfy Validate and carry a valid signature.
type Directory struct {
	NetworkID [32]byte
	Authority keys.IdentityPublic
	// Serial counts the authority's documents: 1 for its first, one more each period.
	Serial uint64
	// Previous is the Hash of the authority's document with serial Serial-1; zero for serial 1.
	Previous [32]byte
	// The document is valid in [ValidAfter, ValidUntil).
	ValidAfter, ValidUntil time.Time
	// Entries are sorted by Identity (bytewise), one per relay.
	Entries   []Entry
	Signature [64]byte
}

// ValidAt reports whether now lies in the document's validity window.
func (d *Directory) ValidAt(now time.Time) bool {
	return !now.Before(d.ValidAfter) && now.Before(d.ValidUntil)
}

// Validate reports every way in which d breaks the rules of the format, joined into one error. It
// does not check the signature.
func (d *Directory) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.Serial == 0 {
		bad("serial 0")
	}
	if (d.Serial == 1) != (d.Previous == [32]byte{}) {
		bad("serial %d with previous hash %x: the previous hash is zero exactly for serial 1", d.Serial, d.Previous)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"valid-after", d.ValidAfter}, {"valid-until", d.ValidUntil}} {
		if err := descriptor.CheckTime(t.t); err != nil {
			bad("%s: %v", t.name, err)
		}
	}
	if !d.ValidAfter.Before(d.ValidUntil) {
		bad("validity window [%s, %s) is empty", stamp(d.ValidAfter), stamp(d.ValidUntil))
	} else if w := d.ValidUntil.Sub(d.ValidAfter); w > MaxValidity {
		bad("validity window of %s is longer than %s", w, MaxValidity)
	}
	if len(d.Entries) > MaxEntries {
		bad("%d entries, more than %d", len(d.Entries), MaxEntries)
	}
	// One error per kind of problem: a broken document of 20,000 entries should not make a 20,000-line error.
	unsorted, unknown := -1, -1
	for i, e := range d.Entries {
		if unsorted < 0 && i > 0 && bytes.Compare(d.Entries[i-1].Identity[:], e.Identity[:]) >= 0 {
			unsorted = i
		}
		if unknown < 0 && e.Flags&^knownFlags != 0 {
			unknown = i
		}
	}
	if unsorted >= 0 {
		bad("entries not sorted by identity without duplicates at entry %d", unsorted)
	}
	if unknown >= 0 {
		bad("entry %d has unknown flags %s", unknown, d.Entries[unknown].Flags)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
