// Package pool recycles the buffers that carry one link message (a cell header and the largest body),
// so that forwarding a cell allocates nothing.
package pool

import (
	"sync"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// Size is the capacity of every buffer: a cell header and a full cell body.
const Size = cell.HeaderLen + onion.FullSize

var buffers = sync.Pool{New: func() any { return new([Size]byte) }}

// Get returns a buffer of length Size. Its contents are whatever the last user left.
func Get() []byte { return buffers.Get().(*[Size]byte)[:] }

// Put gives a buffer from Get back. Passing anything else is allowed and ignored.
func Put(b []byte) {
	if cap(b) >= Size {
		buffers.Put((*[Size]byte)(b[:Size]))
	}
}
