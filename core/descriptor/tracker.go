package descriptor

import (
	"fmt"
	"sync"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Tracker remembers the last accepted sequence number of each relay, as a BEP 44 node does for its
// items, so that an old descriptor replayed by anyone (a DHT node, a directory mirror) cannot replace
// a newer one. It is safe for concurrent use. The zero value is ready.
type Tracker struct {
	mu   sync.Mutex
	last map[keys.IdentityPublic]accepted
}

type accepted struct {
	seq    uint64
	digest [32]byte
}

// Accept records d (from Parse) as its relay's current descriptor. It refuses a sequence number lower
// than the last accepted one (ErrOldSeq), and the same number with different content (ErrSeqReused):
// the same descriptor again is fine. Accept does not check time or network; call Check first.
func (t *Tracker) Accept(d *Descriptor) error {
	b, err := d.Encode()
	if err != nil {
		return err
	}
	digest := Digest(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[d.Identity]; ok {
		switch {
		case d.Seq < last.seq:
			return fmt.Errorf("%w: relay %s seq %d, accepted %d", ErrOldSeq, d.Identity, d.Seq, last.seq)
		case d.Seq == last.seq && digest != last.digest:
			return fmt.Errorf("%w: relay %s seq %d", ErrSeqReused, d.Identity, d.Seq)
		}
	}
	if t.last == nil {
		t.last = make(map[keys.IdentityPublic]accepted)
	}
	t.last[d.Identity] = accepted{seq: d.Seq, digest: digest}
	return nil
}

// Seq returns the last sequence number accepted for relay.
func (t *Tracker) Seq(relay keys.IdentityPublic) (seq uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.last[relay]
	return last.seq, ok
}

// Forget drops what the tracker remembers of relay, so that memory stays bounded by the relays the
// caller still cares about (for example those seen within MaxAge).
func (t *Tracker) Forget(relay keys.IdentityPublic) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, relay)
}

// Len returns how many relays the tracker remembers.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.last)
}
