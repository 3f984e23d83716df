package descriptor

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Version is the format version, the first byte of every encoding.
const Version = 1

// SignatureContext precedes the encoding (without its signature) in the message the identity key
// signs. The same key also signs BEP 44 items, whose signed messages start "3:seq" or "4:salt", and may
// sign other documents under other contexts: no signature can be taken for one of those.
const SignatureContext = "meshvpn descriptor v1"

const (
	fixedLen = 1 + 32 + 32 + 32 + 8 + 8 + 32 + 8 + 8 + 8 // up to the address count
	sigLen   = ed25519.SignatureSize
	// minLen is the shortest encoding: one IPv4 address and every list and string empty.
	minLen = fixedLen + 1 + 7 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + sigLen
)

// Sign sets d.Identity to id's public key, checks d (Validate, MaxSize), signs it and returns its
// encoding. d.Signature holds the new signature afterwards.
func (d *Descriptor) Sign(id *keys.Identity) ([]byte, error) {
	d.Identity = id.Public()
	body, err := d.body()
	if err != nil {
		return nil, err
	}
	copy(d.Signature[:], id.Sign(signedMessage(body)))
	return append(body, d.Signature[:]...), nil
}

// Encode returns d's encoding with the signature it holds. It does not sign: it gives back what Parse
// read or Sign wrote, for storing or for computing the digest a directory names.
func (d *Descriptor) Encode() ([]byte, error) {
	body, err := d.body()
	if err != nil {
		return nil, err
	}
	return append(body, d.Signature[:]...), nil
}

// Digest returns the SHA-256 of an encoded descriptor: the name a directory gives it.
func Digest(encoded []byte) [32]byte { return sha256.Sum256(encoded) }

// Parse decodes a descriptor and checks its signature. It accepts only what Sign writes: one encoding
// per descriptor, no trailing bytes, every field within the rules of Validate. It does not check the
// time or the network (see Check).
func Parse(b []byte) (*Descriptor, error) {
	d, body, err := decode(b)
	if err != nil {
		return nil, err
	}
	if !d.Identity.Verify(signedMessage(body), d.Signature[:]) {
		return nil, fmt.Errorf("%w by %s", ErrSignature, d.Identity)
	}
	return d, nil
}

func signedMessage(body []byte) []byte {
	return append([]byte(SignatureContext), body...)
}

// body encodes everything but the signature.
func (d *Descriptor) body() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxSize)
	b = append(b, Version)
	b = append(b, d.NetworkID[:]...)
	b = append(b, d.Identity[:]...)
	b = append(b, d.OnionKey[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(d.ValidFrom.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.ValidUntil.Unix()))
	b = append(b, d.LinkKey[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Published.Unix()))
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	b = binary.BigEndian.AppendUint64(b, d.Bandwidth)
	b = append(b, byte(len(d.Addresses)))
	for _, a := range d.Addresses {
		b = appendAddr(b, a)
	}
	b = append(b, byte(len(d.Family)))
	for _, f := range d.Family {
		b = append(b, f[:]...)
	}
	var summary string
	if d.IsExit() {
		summary = d.Exit.String()
	}
	if len(summary) > MaxSize {
		return nil, fmt.Errorf("%w: %d-byte exit summary", ErrTooLarge, len(summary))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(summary)))
	b = append(b, summary...)
	for _, s := range []string{d.Country, d.Region, d.Software, d.Name} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(d.Rendezvous)))
	for _, rv := range d.Rendezvous {
		b = append(b, rv.LinkKey[:]...)
		b = appendAddr(b, rv.Addr)
	}
	if c := d.capabilities(); c != 0 {
		b = append(b, c)
	}
	if n := len(b) + sigLen; n > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, n, MaxSize)
	}
	return b, nil
}

// appendAddr writes a as its family (4 or 6), its 4 or 16 address bytes and its port.
func appendAddr(b []byte, a netip.AddrPort) []byte {
	if a.Addr().Is4() {
		b = append(b, 4)
	} else {
		b = append(b, 6)
	}
	b = append(b, a.Addr().AsSlice()...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// Capability bits, the optional byte after the rendezvous list.
const (
	capIPv6           = 1 << 0 // Descriptor.IPv6
	knownCapabilities = capIPv6
)

func (d *Descriptor) capabilities() byte {
	var c byte
	if d.IPv6 {
		c |= capIPv6
	}
	return c
}

// decode is Parse without the signature check; it returns the signed body too.
func decode(b []byte) (*Descriptor, []byte, error) {
	if len(b) > MaxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(b), MaxSize)
	}
	if len(b) < minLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, fewer than %d", ErrMalformed, len(b), minLen)
	}
	if b[0] != Version {
		return nil, nil, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	body, sig := b[:len(b)-sigLen], b[len(b)-sigLen:]
	r := reader{b: body[1:]}
	d := &Descriptor{}
	r.copy(d.NetworkID[:])
	r.copy(d.Identity[:])
	r.copy(d.OnionKey[:])
	d.ValidFrom = r.time()
	d.ValidUntil = r.time()
	r.copy(d.LinkKey[:])
	d.Published = r.time()
	d.Seq = r.u64()
	d.Bandwidth = r.u64()
	if n := int(r.u8()); 1 <= n && n <= MaxAddresses {
		for range n {
			d.Addresses = append(d.Addresses, r.addr())
		}
	} else {
		r.fail("%d addresses, want 1 to %d", n, MaxAddresses)
	}
	if n := int(r.u8()); n <= MaxFamily {
		for range n {
			var f keys.IdentityPublic
			r.copy(f[:])
			d.Family = append(d.Family, f)
		}
	} else {
		r.fail("%d family members, more than %d", n, MaxFamily)
	}
	if text := r.bytes(int(r.u16())); len(text) > 0 {
		s, err := exitports.Parse(string(text))
		switch {
		case err != nil:
			r.fail("exit summary: %v", err)
		case len(s.TCP) == 0 && len(s.UDP) == 0:
			r.fail("exit summary %q accepts nothing: a non-exit has none", text)
		}
		d.Exit = s
	}
	d.Country = string(r.bytes(int(r.u8())))
	d.Region = string(r.bytes(int(r.u8())))
	d.Software = string(r.bytes(int(r.u8())))
	d.Name = string(r.bytes(int(r.u8())))
	if n := int(r.u8()); n <= MaxRendezvous {
		for range n {
			var rv Rendezvous
			r.copy(rv.LinkKey[:])
			rv.Addr = r.addr()
			d.Rendezvous = append(d.Rendezvous, rv)
		}
	} else {
		r.fail("%d rendezvous, more than %d", n, MaxRendezvous)
	}
	if r.err == nil && len(r.b) > 0 {
		// The capabilities: absent when none is set, so one descriptor has one encoding and those
		// signed before capabilities existed read the same.
		switch c := r.u8(); {
		case c == 0:
			r.fail("a capability byte of 0: none is written as no byte")
		case c&^knownCapabilities != 0:
			r.fail("unknown capabilities %#02x", c&^knownCapabilities)
		default:
			d.IPv6 = c&capIPv6 != 0
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes before the signature", len(r.b))
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, r.err)
	}
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	copy(d.Signature[:], sig)
	return d, body, nil
}

// reader reads big-endian fields from b. After the first failure every read returns zeros and err
// keeps the first problem, so a decoder reads straight through and checks once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("truncated: %d bytes wanted, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) copy(dst []byte) { copy(dst, r.bytes(len(dst))) }

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// time reads seconds since 1970. A value past MaxUnix is refused here rather than by Validate, since
// time.Unix cannot represent every uint64.
func (r *reader) time() time.Time {
	s := r.u64()
	if s > MaxUnix {
		r.fail("time %d is past year 9999", s)
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

func (r *reader) addr() netip.AddrPort {
	var ip netip.Addr
	switch fam := r.u8(); fam {
	case 4:
		var a [4]byte
		r.copy(a[:])
		ip = netip.AddrFrom4(a)
	case 6:
		var a [16]byte
		r.copy(a[:])
		ip = netip.AddrFrom16(a)
	default:
		r.fail("address family %d", fam)
	}
	return netip.AddrPortFrom(ip, r.u16())
}
