package authority

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PointerLen is the length of an encoded Pointer.
const PointerLen = 8 + 32

// directorySaltPrefix begins the salt of an authority's directory pointer.
const directorySaltPrefix = "directory"

// DirectorySalt returns the BEP 44 salt of an authority's directory pointer: "directory" and the
// network id.
func DirectorySalt(networkID [32]byte) []byte {
	return append([]byte(directorySaltPrefix), networkID[:]...)
}

// Pointer names an authority's latest directory document on the DHT (a BEP 44 mutable item keyed by
// the authority's identity, salt DirectorySalt, seq = Serial). It is signed by the authority as a
// BEP 44 item, but it is only a hint: a client still checks the document it fetches.
type Pointer struct {
	Serial uint64
	Hash   [32]byte // the document's SHA-256 (directory.Directory.Hash)
}

// Encode returns the pointer's value: serial (8 bytes, big-endian) and hash.
func (p Pointer) Encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, PointerLen), p.Serial)
	return append(b, p.Hash[:]...)
}

// ParsePointer decodes what Encode writes, and only that.
func ParsePointer(b []byte) (Pointer, error) {
	if len(b) != PointerLen {
		return Pointer{}, fmt.Errorf("directory pointer of %d bytes, want %d", len(b), PointerLen)
	}
	p := Pointer{Serial: binary.BigEndian.Uint64(b)}
	copy(p.Hash[:], b[8:])
	if p.Serial == 0 {
		return Pointer{}, errors.New("directory pointer with serial 0")
	}
	return p, nil
}
