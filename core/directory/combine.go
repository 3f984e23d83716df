package directory

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Consensus is what a threshold of authorities agree on, as a client computes it.
type Consensus struct {
	NetworkID [32]byte
	// ValidUntil is the earliest ValidUntil of the documents counted: combine again by then.
	ValidUntil time.Time
	// Sources are the documents counted, one per authority, sorted by authority.
	Sources []Source
	// Relays are sorted by identity.
	Relays []Relay
	// Ignored says why each document that was not counted was left out (unlisted authority, other
	// network, bad signature, not valid now). Documents superseded by a higher serial are not listed.
	Ignored []error
}

// Source names one document a consensus counted.
type Source struct {
	Authority keys.IdentityPublic
	Serial    uint64
	Hash      [32]byte
}

// Relay is one relay of the consensus: the descriptor digest a threshold of documents agree on, the
// flags a threshold of those documents set, and the medians of their measurements.
type Relay struct {
	Entry
	// Votes is how many counted documents list the relay with this descriptor.
	Votes int
}

// Lookup returns the relay with the identity id.
func (c *Consensus) Lookup(id keys.IdentityPublic) (Relay, bool) {
	i, ok := slices.BinarySearchFunc(c.Relays, id, func(r Relay, id keys.IdentityPublic) int {
		return bytes.Compare(r.Identity[:], id[:])
	})
	if !ok {
		return Relay{}, false
	}
	return c.Relays[i], true
}

// EquivocationError reports an authority that signed two different documents with one serial: proof
// that its key is misused, since an honest authority signs one document per period.
type EquivocationError struct {
	Authority keys.IdentityPublic
	Serial    uint64
	Hashes    [2][32]byte
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("directory: authority %s signed two documents with serial %d (%x, %x)",
		e.Authority, e.Serial, e.Hashes[0][:8], e.Hashes[1][:8])
}

// Combine computes the consensus of docs for the network networkID, trusting the authorities auths
// of which at least threshold must agree. The rules (docs/protocol.md, section 10):
//
//   - A document counts only if its authority is in auths, it is for networkID, its signature holds,
//     and it is valid at now. Of several counting documents by one authority, the highest serial counts.
//   - Two different validly signed documents by one authority with the same serial are an
//     equivocation: Combine fails with an *EquivocationError naming the authority.
//   - Fewer than threshold counting documents: ErrNoConsensus.
//   - A relay is in the consensus when at least threshold documents list it with the same descriptor
//     digest. (If two digests each reach the threshold, possible only when threshold is at most half
//     of auths, the authorities disagree on what the relay is and it is left out.)
//   - Its flags are those that at least threshold of those documents set, Degraded included; its
//     weight is their lower median (unmeasured zeros included, so a relay counts as measured only
//     when more than half of them measured it), its latency the upper median of those that measured
//     it: a minority of authorities can move neither past an honest one's figure.
func Combine(networkID [32]byte, auths []keys.IdentityPublic, threshold int, docs []*Directory, now time.Time) (*Consensus, error) {
	if threshold < 1 || threshold > len(auths) {
		return nil, fmt.Errorf("directory: threshold %d of %d authorities", threshold, len(auths))
	}
	listed := make(map[keys.IdentityPublic]bool, len(auths))
	for _, a := range auths {
		if listed[a] {
			return nil, fmt.Errorf("directory: authority %s listed twice", a)
		}
		listed[a] = true
	}

	type counted struct {
		doc  *Directory
		hash [32]byte
	}
	type slot struct {
		auth   keys.IdentityPublic
		serial uint64
	}
	signed := make(map[slot][32]byte)
	best := make(map[keys.IdentityPublic]counted)
	c := &Consensus{NetworkID: networkID}
	for i, d := range docs {
		if d == nil {
			continue
		}
		ignore := func(format string, args ...any) {
			c.Ignored = append(c.Ignored, fmt.Errorf("document %d (authority %s, serial %d): %s",
				i, d.Authority, d.Serial, fmt.Sprintf(format, args...)))
		}
		if !listed[d.Authority] {
			ignore("authority not listed")
			continue
		}
		if d.NetworkID != networkID {
			ignore("for network %x", d.NetworkID[:8])
			continue
		}
		h, err := d.Verify()
		if err != nil {
			ignore("%v", err)
			continue
		}
		s := slot{d.Authority, d.Serial}
		if other, ok := signed[s]; ok && other != h {
			return nil, &EquivocationError{Authority: d.Authority, Serial: d.Serial, Hashes: [2][32]byte{other, h}}
		}
		signed[s] = h
		if !d.ValidAt(now) {
			ignore("valid [%s, %s), not at %s", stamp(d.ValidAfter), stamp(d.ValidUntil), stamp(now))
			continue
		}
		if cur, ok := best[d.Authority]; !ok || d.Serial > cur.doc.Serial {
			best[d.Authority] = counted{d, h}
		}
	}
	if len(best) < threshold {
		err := fmt.Errorf("%w: %d of %d authorities, want %d", ErrNoConsensus, len(best), len(auths), threshold)
		if len(c.Ignored) > 0 {
			err = fmt.Errorf("%w: %w", err, errors.Join(c.Ignored...))
		}
		return nil, err
	}

	var all []Entry
	for a, b := range best {
		c.Sources = append(c.Sources, Source{Authority: a, Serial: b.doc.Serial, Hash: b.hash})
		if c.ValidUntil.IsZero() || b.doc.ValidUntil.Before(c.ValidUntil) {
			c.ValidUntil = b.doc.ValidUntil
		}
		all = append(all, b.doc.Entries...)
	}
	slices.SortFunc(c.Sources, func(a, b Source) int { return bytes.Compare(a.Authority[:], b.Authority[:]) })
	slices.SortFunc(all, func(a, b Entry) int {
		if c := bytes.Compare(a.Identity[:], b.Identity[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.Descriptor[:], b.Descriptor[:])
	})
	for len(all) > 0 {
		n := 1
		for n < len(all) && all[n].Identity == all[0].Identity {
			n++
		}
		if r, ok := agree(all[:n], threshold); ok {
			c.Relays = append(c.Relays, r)
		}
		all = all[n:]
	}
	return c, nil
}

// agree combines the entries of the documents that list one relay, sorted by descriptor digest.
func agree(entries []Entry, threshold int) (Relay, bool) {
	var votes []Entry
	for len(entries) > 0 {
		n := 1
		for n < len(entries) && entries[n].Descriptor == entries[0].Descriptor {
			n++
		}
		if n >= threshold {
			if votes != nil {
				return Relay{}, false // two descriptors each reach the threshold
			}
			votes = entries[:n]
		}
		entries = entries[n:]
	}
	if votes == nil {
		return Relay{}, false
	}
	r := Relay{Entry: Entry{Identity: votes[0].Identity, Descriptor: votes[0].Descriptor}, Votes: len(votes)}
	for bit := Flags(1); bit&knownFlags != 0; bit <<= 1 {
		set := 0
		for _, e := range votes {
			if e.Flags&bit != 0 {
				set++
			}
		}
		if set >= threshold {
			r.Flags |= bit
		}
	}
	weights := make([]uint32, 0, len(votes))
	var latencies []uint32
	for _, e := range votes {
		weights = append(weights, e.Weight)
		if e.LatencyMicros != 0 {
			latencies = append(latencies, e.LatencyMicros)
		}
	}
	slices.Sort(weights)
	r.Weight = weights[(len(weights)-1)/2]
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.LatencyMicros = latencies[len(latencies)/2]
	}
	return r, true
}
