package netdir

import (
	"errors"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// MaxRelays is the largest network a NetDir holds.
const MaxRelays = 1 << 20

// NetDir is one snapshot of the network: the relays, when it was made, and from which authorities'
// documents (none for a relay list). It never changes; a new directory is a new NetDir.
type NetDir struct {
	relays   []Relay
	byID     map[keys.IdentityPublic]int
	fetched  time.Time
	sources  []directory.Source
	problems []error
}

// FromConsensus returns the relays of the consensus that have a descriptor among descs (keyed by
// descriptor.Digest, as the consensus names them): the descriptor's keys, address and attributes, the
// consensus's flags and weight. problems lists the relays left out and why (no matching descriptor);
// the error says that none was left.
func FromConsensus(c *directory.Consensus, descs map[[32]byte]*descriptor.Descriptor) (d *NetDir, problems []error, err error) {
	var rs []Relay
	for _, cr := range c.Relays {
		desc, ok := descs[cr.Descriptor]
		if !ok || desc.Identity != cr.Identity || len(desc.Addresses) == 0 {
			problems = append(problems, fmt.Errorf("relay %s: no descriptor matches the consensus", cr.Identity))
			continue
		}
		r := FromDescriptor(desc, desc.Addresses[0])
		r.Flags, r.Weight = Flags(cr.Flags), uint64(cr.Weight)
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, problems, fmt.Errorf("the consensus lists %d relays but no descriptor of them could be had", len(c.Relays))
	}
	d, err = build(rs)
	if err != nil {
		return nil, problems, err
	}
	d.sources = append([]directory.Source(nil), c.Sources...)
	return d, problems, nil
}

// FromList returns a snapshot of relays given one by one (a relay list file), reporting every problem
// at once: no address, an identity twice, too many relays. Their flags are as given.
func FromList(relays []Relay) (*NetDir, error) {
	return build(append([]Relay(nil), relays...))
}

func build(rs []Relay) (*NetDir, error) {
	if len(rs) > MaxRelays {
		return nil, fmt.Errorf("netdir: %d relays, more than %d", len(rs), MaxRelays)
	}
	d := &NetDir{relays: rs, byID: make(map[keys.IdentityPublic]int, len(rs)), fetched: time.Now()}
	var errs []error
	for i, r := range rs {
		if !r.Addr.IsValid() {
			errs = append(errs, fmt.Errorf("relay %d (%s): no address", i, r))
			continue
		}
		if _, dup := d.byID[r.Identity]; dup {
			errs = append(errs, fmt.Errorf("relay %d (%s): identity listed twice", i, r))
			continue
		}
		d.byID[r.Identity] = i
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("netdir: %w", errors.Join(errs...))
	}
	return d, nil
}

// Relays returns the relays, in the order they were given (a consensus's: by identity). The slice is
// the caller's; the relays' own slices are shared.
func (d *NetDir) Relays() []Relay { return append([]Relay(nil), d.relays...) }

// Len returns the number of relays.
func (d *NetDir) Len() int { return len(d.relays) }

// ByID returns the relay with the identity id.
func (d *NetDir) ByID(id keys.IdentityPublic) (Relay, bool) {
	i, ok := d.byID[id]
	if !ok {
		return Relay{}, false
	}
	return d.relays[i], true
}

// Fetched returns when the snapshot was made.
func (d *NetDir) Fetched() time.Time { return d.fetched }

// Sources returns the authorities' documents the consensus counted; none for a relay list.
func (d *NetDir) Sources() []directory.Source { return append([]directory.Source(nil), d.sources...) }

// FromDirectory reports whether the snapshot comes from the authorities (not from a relay list).
func (d *NetDir) FromDirectory() bool { return len(d.sources) > 0 }

// Problems returns what the fetch that made the snapshot left out and why (an authority that did not
// answer, a rollback, a descriptor that did not match): for status and logs.
func (d *NetDir) Problems() []error { return append([]error(nil), d.problems...) }

// Adjust returns a copy of the snapshot, same time and sources, whose relays f changed (a client's
// own say over the directory, such as its configured entry guards). f must not change identities.
func (d *NetDir) Adjust(f func(*Relay)) *NetDir {
	n := *d
	n.relays = append([]Relay(nil), d.relays...)
	for i := range n.relays {
		f(&n.relays[i])
	}
	return &n
}
