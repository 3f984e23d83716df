// Package replay implements a sliding anti-replay window over 64-bit message
// counters, used on every link packet and every onion-layer cell.
//
// The window follows the RFC 6479 idea used by WireGuard: the seen-bitmap is
// a ring of 64-bit words rather than one long shift register, so advancing
// the window only zeroes the words it moves into and never shifts bits. That
// keeps Accept constant-time (bounded by the ring size, not by the size of a
// forward jump) and allocation-free on the data-plane hot path.
package replay

const (
	// WindowBits is the number of bits in the ring of seen counters.
	WindowBits = 2048
	// WindowWords is the number of 64-bit words in the ring.
	WindowWords = WindowBits / 64
	// Size is how far behind the highest accepted counter a counter may still
	// be and be accepted. It is one word short of the ring because the word
	// holding the newest counter also covers counters ahead of it, which must
	// not alias counters a whole ring behind.
	Size = WindowBits - 64
)

const (
	wordShift = 6 // log2(64): counter -> word index
	bitMask   = 63
	ringMask  = WindowWords - 1
)

// Window is a sliding replay window. The zero value is ready: it has seen
// nothing. It is not safe for concurrent use; callers hold their own lock.
//
// It holds no pointers or slices, so it may be embedded and copied freely
// without allocation.
type Window struct {
	last uint64 // highest accepted counter; meaningful only when seen
	seen bool   // distinguishes "nothing accepted" from "accepted counter 0"
	ring [WindowWords]uint64
}

// Accept reports whether counter has not been seen before and is not too old,
// and if so records it. Counter 0 is a valid first counter, and counters may
// arrive in any order within the window.
func (w *Window) Accept(counter uint64) bool {
	word := counter >> wordShift
	switch {
	case !w.seen:
		// The ring is all zero here: the zero value and Reset both leave it so.
		w.seen = true
		w.last = counter
	case counter > w.last:
		// Zero the ring words the window slides into. Word indices are at most
		// 2^58-1, so neither the subtraction nor cur+i can overflow.
		cur := w.last >> wordShift
		if diff := word - cur; diff >= WindowWords {
			w.ring = [WindowWords]uint64{}
		} else {
			for i := uint64(1); i <= diff; i++ {
				w.ring[(cur+i)&ringMask] = 0
			}
		}
		w.last = counter
	case w.last-counter >= Size:
		return false
	}
	slot := &w.ring[word&ringMask]
	bit := uint64(1) << (counter & bitMask)
	if *slot&bit != 0 {
		return false
	}
	*slot |= bit
	return true
}

// Reset forgets everything, so that a replaced key starts with a fresh
// counter space.
func (w *Window) Reset() {
	*w = Window{}
}

// Highest returns the highest accepted counter and whether any counter has
// been accepted; the flag is needed because 0 is a valid counter.
func (w *Window) Highest() (uint64, bool) {
	return w.last, w.seen
}
