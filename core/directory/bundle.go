package directory

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The HTTP paths an authority serves, under the path of its URL in the genesis file.
const (
	// PathDirectory is the latest document; PathDirectory + "/{serial}" an older one.
	PathDirectory = "/v1/directory"
	// PathDescriptors is the bundle of the latest document's descriptors (EncodeBundle).
	PathDescriptors = "/v1/descriptors"
)

// maxBundleItem is the longest item a bundle can carry (its length is 2 bytes).
const maxBundleItem = 0xffff

// EncodeBundle writes descriptors as PathDescriptors serves them: each as a 2-byte big-endian length
// and its bytes.
func EncodeBundle(descs [][]byte) ([]byte, error) {
	n := 0
	for _, d := range descs {
		if len(d) > maxBundleItem {
			return nil, fmt.Errorf("bundle: a %d-byte descriptor does not fit", len(d))
		}
		n += 2 + len(d)
	}
	b := make([]byte, 0, n)
	for _, d := range descs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
		b = append(b, d...)
	}
	return b, nil
}

// ParseBundle splits a bundle into its descriptors (sub-slices of b), failing on a truncated one. It
// does not parse the descriptors: a client checks each against the digest its consensus names.
func ParseBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("bundle: a %d-byte item with %d bytes left", n, len(b)-2)
		}
		out = append(out, b[2:2+n:2+n])
		b = b[2+n:]
	}
	return out, nil
}
