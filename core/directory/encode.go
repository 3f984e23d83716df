package directory

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Version is the format version, the first byte of every encoding.
const Version = 1

// SignatureContext precedes the encoding (without its signature) in the message an authority signs,
// so that no signature on a directory can be taken for one on anything else the key signs.
const SignatureContext = "meshvpn directory v1"

const (
	// headerLen runs to the end of the entry count: version [0,1), network id [1,33), authority
	// [33,65), serial [65,73), previous [73,105), valid-after [105,113), valid-until [113,121),
	// entry count [121,125).
	headerLen = 125
	entryLen  = 32 + 32 + 1 + 4 + 4
	sigLen    = ed25519.SignatureSize
)

// Sign sets d.Authority to id's public key, checks d (Validate), signs it and returns its encoding.
// d.Signature holds the new signature afterwards.
func (d *Directory) Sign(id *keys.Identity) ([]byte, error) {
	d.Authority = id.Public()
	body, err := d.body()
	if err != nil {
		return nil, err
	}
	copy(d.Signature[:], id.Sign(signedMessage(body)))
	return append(body, d.Signature[:]...), nil
}

// Encode returns d's encoding with the signature it holds. It does not sign.
func (d *Directory) Encode() ([]byte, error) {
	body, err := d.body()
	if err != nil {
		return nil, err
	}
	return append(body, d.Signature[:]...), nil
}

// Hash returns the SHA-256 of d's encoding: what the authority's next document names as Previous.
func (d *Directory) Hash() ([32]byte, error) {
	b, err := d.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Verify checks d's signature by d.Authority and returns d's Hash. Parse has already done it; Combine
// and Chain do it again, so a Directory built or changed by hand cannot pass for a signed one.
func (d *Directory) Verify() ([32]byte, error) {
	b, err := d.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	if !d.Authority.Verify(signedMessage(b[:len(b)-sigLen]), d.Signature[:]) {
		return [32]byte{}, fmt.Errorf("%w by authority %s (serial %d)", ErrSignature, d.Authority, d.Serial)
	}
	return sha256.Sum256(b), nil
}

// Parse decodes a document and checks its signature. It accepts only what Sign writes: one encoding
// per document, no trailing bytes, everything within the rules of Validate. It does not check the
// time, the network or the authority (see Combine and Chain).
func Parse(b []byte) (*Directory, error) {
	d, body, err := decode(b)
	if err != nil {
		return nil, err
	}
	if !d.Authority.Verify(signedMessage(body), d.Signature[:]) {
		return nil, fmt.Errorf("%w by authority %s (serial %d)", ErrSignature, d.Authority, d.Serial)
	}
	return d, nil
}

func signedMessage(body []byte) []byte {
	return append([]byte(SignatureContext), body...)
}

func (d *Directory) body() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, headerLen+len(d.Entries)*entryLen+sigLen)
	b = append(b, Version)
	b = append(b, d.NetworkID[:]...)
	b = append(b, d.Authority[:]...)
	b = binary.BigEndian.AppendUint64(b, d.Serial)
	b = append(b, d.Previous[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(d.ValidAfter.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.ValidUntil.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Entries)))
	for _, e := range d.Entries {
		b = append(b, e.Identity[:]...)
		b = append(b, e.Descriptor[:]...)
		b = append(b, byte(e.Flags))
		b = binary.BigEndian.AppendUint32(b, e.Weight)
		b = binary.BigEndian.AppendUint32(b, e.LatencyMicros)
	}
	return b, nil
}

// decode is Parse without the signature check; it returns the signed body too.
func decode(b []byte) (*Directory, []byte, error) {
	if len(b) > MaxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(b), MaxSize)
	}
	if len(b) < headerLen+sigLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, fewer than %d", ErrMalformed, len(b), headerLen+sigLen)
	}
	if b[0] != Version {
		return nil, nil, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	n := binary.BigEndian.Uint32(b[headerLen-4:])
	if n > MaxEntries {
		return nil, nil, fmt.Errorf("%w: %d entries, more than %d", ErrMalformed, n, MaxEntries)
	}
	if want := headerLen + int(n)*entryLen + sigLen; len(b) != want {
		return nil, nil, fmt.Errorf("%w: %d bytes for %d entries, want %d", ErrMalformed, len(b), n, want)
	}
	d := &Directory{}
	copy(d.NetworkID[:], b[1:33])
	copy(d.Authority[:], b[33:65])
	d.Serial = binary.BigEndian.Uint64(b[65:73])
	copy(d.Previous[:], b[73:105])
	var err error
	if d.ValidAfter, err = timeOf(b[105:113]); err != nil {
		return nil, nil, err
	}
	if d.ValidUntil, err = timeOf(b[113:121]); err != nil {
		return nil, nil, err
	}
	if n > 0 {
		d.Entries = make([]Entry, n)
	}
	for i := range d.Entries {
		e := b[headerLen+i*entryLen:]
		copy(d.Entries[i].Identity[:], e)
		copy(d.Entries[i].Descriptor[:], e[32:])
		d.Entries[i].Flags = Flags(e[64])
		d.Entries[i].Weight = binary.BigEndian.Uint32(e[65:])
		d.Entries[i].LatencyMicros = binary.BigEndian.Uint32(e[69:])
	}
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	copy(d.Signature[:], b[len(b)-sigLen:])
	return d, b[:len(b)-sigLen], nil
}

// timeOf reads seconds since 1970 (descriptor.MaxUnix); a larger value is refused here, since
// time.Unix cannot represent every uint64.
func timeOf(b []byte) (time.Time, error) {
	s := binary.BigEndian.Uint64(b)
	if s > descriptor.MaxUnix {
		return time.Time{}, fmt.Errorf("%w: time %d is past year 9999", ErrMalformed, s)
	}
	return time.Unix(int64(s), 0).UTC(), nil
}
