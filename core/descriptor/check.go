package descriptor

import (
	"fmt"
	"time"
)

// Check reports whether d may be used at now in the network networkID, in this order: the network,
// the published time (at most MaxClockSkew ahead of now, at most MaxAge behind it), and the onion key's
// window (it must contain now). d must come from Parse, which has checked its form and signature.
func (d *Descriptor) Check(now time.Time, networkID [32]byte) error {
	if d.NetworkID != networkID {
		return fmt.Errorf("%w: relay %s", ErrWrongNetwork, d.Identity)
	}
	if ahead := d.Published.Sub(now); ahead > MaxClockSkew {
		return fmt.Errorf("%w: relay %s published %s, %s from now", ErrFuture, d.Identity, stamp(d.Published), ahead)
	}
	if age := now.Sub(d.Published); age > MaxAge {
		return fmt.Errorf("%w: relay %s published %s, %s ago", ErrStale, d.Identity, stamp(d.Published), age.Truncate(time.Second))
	}
	if now.Before(d.ValidFrom) || !now.Before(d.ValidUntil) {
		return fmt.Errorf("%w: relay %s onion key valid [%s, %s)", ErrOnionKey, d.Identity, stamp(d.ValidFrom), stamp(d.ValidUntil))
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
