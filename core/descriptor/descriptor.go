// Package descriptor is a relay's self-signed descriptor: what a relay says about itself (keys,
// addresses, exit ports, family, location, capacity, and for a relay behind a NAT the rendezvous nodes
// that reach it) in the one binary encoding it publishes as a BEP 44 mutable item on the DHT, keyed by
// its identity key. Encoding, decoding and checking are pure: no sockets, no clocks (the time is passed
// in), no state but the caller's Tracker.
package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Limits. MaxSize keeps a descriptor inside one BEP 44 item (at most 1000 bytes of bencoded value,
// which adds a "900:" prefix) with room to spare.
const (
	MaxSize        = 900
	MaxAddresses   = 4
	MaxFamily      = 8
	MaxRegionLen   = 16
	MaxSoftwareLen = 32
	MaxNameLen     = 19 // as Tor's nicknames
	// MaxRendezvous bounds the rendezvous a relay behind a NAT names: a second one keeps it reachable
	// while the first is down, and each costs up to 51 bytes that the exit summary can no longer use.
	MaxRendezvous = 2
	// MaxSeq is the largest sequence number: BEP 44 carries seq as a bencoded signed 64-bit integer.
	MaxSeq = math.MaxInt64
)

// Freshness. A relay re-signs its descriptor (with a higher Seq) on every change and at least every
// MaxAge/2, so that a descriptor older than MaxAge means a relay that has stopped.
const (
	MaxAge = 24 * time.Hour
	// MaxClockSkew is how far in the future a descriptor's Published time may lie.
	MaxClockSkew = 10 * time.Minute
	// MaxOnionKeyLifetime bounds an onion key's validity window (a week's key plus a week's grace, and
	// margin), so that a descriptor cannot keep one onion key, and so one forward-secrecy horizon, forever.
	MaxOnionKeyLifetime = 28 * 24 * time.Hour
)

// Errors, each wrapped by what Parse, Sign, Check and Tracker return, for errors.Is.
var (
	ErrMalformed    = errors.New("descriptor: malformed")
	ErrTooLarge     = errors.New("descriptor: too large")
	ErrSignature    = errors.New("descriptor: bad signature")
	ErrWrongNetwork = errors.New("descriptor: for another network")
	ErrOnionKey     = errors.New("descriptor: onion key not valid now")
	ErrFuture       = errors.New("descriptor: published in the future")
	ErrStale        = errors.New("descriptor: stale")
	ErrOldSeq       = errors.New("descriptor: sequence number older than one already accepted")
	ErrSeqReused    = errors.New("descriptor: sequence number reused with different content")
)

// Descriptor is what a relay publishes about itself. Parse returns only descriptors that satisfy
// Validate and carry a valid signature; Sign refuses to sign one that does not satisfy Validate.
type Descriptor struct {
	NetworkID [32]byte
	Identity  keys.IdentityPublic // Ed25519; signs the descriptor
	OnionKey  keys.StaticPublic   // X25519; the B of circuit handshakes
	// ValidFrom and ValidUntil are the onion key's validity window, [ValidFrom, ValidUntil).
	ValidFrom, ValidUntil time.Time
	LinkKey               keys.StaticPublic // X25519; the relay's static key in link handshakes
	// Addresses are where the relay listens, preferred first: 1 to MaxAddresses, each CheckAddress-valid,
	// no two the same.
	Addresses []netip.AddrPort
	// Exit is the exit port summary; empty (no TCP and no UDP range) for a relay that is not an exit.
	Exit exitports.Summary
	// Family lists the identities of other relays run by the same operator: at most MaxFamily,
	// sorted bytewise, no duplicates, never the relay itself.
	Family []keys.IdentityPublic
	// Country is an ISO 3166-1 alpha-2 code in upper case ("DE"), or empty. The format is checked, not
	// whether the code is assigned.
	Country string
	// Region is short free text (at most MaxRegionLen bytes of printable ASCII), or empty.
	Region string
	// Bandwidth is the relay's advertised capacity in bytes per second. Clients weight by the
	// authorities' measurements, not by this.
	Bandwidth uint64
	// Software names the relay's implementation and version (at most MaxSoftwareLen printable bytes).
	Software string
	// Name is the operator's label for the relay ("r1", "berlin-exit"): at most MaxNameLen letters,
	// digits, '-', '_' and '.' (CheckName), or empty. It is a label, not an identity: nobody checks it
	// and any relay may claim any name; clients show it and take it for an exit only when one relay
	// alone carries it.
	Name string
	// Rendezvous lists, preferred first, the public nodes that a relay behind a NAT keeps a registration
	// with, so that others reach it through one of them (link.Node.DialVia) rather than at its addresses:
	// at most MaxRendezvous, each address CheckAddress-valid, no link key or address twice, never the
	// relay's own link key. Empty for a relay that others can reach directly.
	Rendezvous []Rendezvous
	// IPv6 says that the exit carries its clients' IPv6 to the IPv6 internet (under its policy's IPv6
	// rules, which exit/policy's Summary6 summarizes); only an exit may say so. Clients whose exit does
	// not carry IPv6 drop their IPv6 inside the tunnel.
	IPv6 bool
	// Published is when the relay signed the descriptor.
	Published time.Time
	// Seq is the BEP 44 sequence number: it increases on every change, and is at most MaxSeq.
	Seq uint64
	// Signature is the identity key's Ed25519 signature; Sign sets it and Parse checks it.
	Signature [64]byte
}

// Rendezvous names a public node that introduces peers to a relay behind a NAT, and relays their
// sealed packets when no direct path can be punched.
type Rendezvous struct {
	LinkKey keys.StaticPublic // X25519; the rendezvous's static key in link handshakes
	Addr    netip.AddrPort
}

// IsExit reports whether the relay is an exit: its summary accepts some port.
func (d *Descriptor) IsExit() bool { return len(d.Exit.TCP) > 0 || len(d.Exit.UDP) > 0 }

// Validate reports every way in which d breaks the rules of the format, joined into one error. It
// does not check the signature or the time (see Parse and Check).
func (d *Descriptor) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"onion key valid-from", d.ValidFrom}, {"onion key valid-until", d.ValidUntil}, {"published", d.Published}} {
		if err := CheckTime(t.t); err != nil {
			bad("%s: %v", t.name, err)
		}
	}
	if !d.ValidFrom.Before(d.ValidUntil) {
		bad("onion key window [%s, %s) is empty", d.ValidFrom.UTC().Format(time.RFC3339), d.ValidUntil.UTC().Format(time.RFC3339))
	} else if w := d.ValidUntil.Sub(d.ValidFrom); w > MaxOnionKeyLifetime {
		bad("onion key window of %s is longer than %s", w, MaxOnionKeyLifetime)
	}
	if n := len(d.Addresses); n < 1 || n > MaxAddresses {
		bad("%d addresses, want 1 to %d", n, MaxAddresses)
	}
	for i, a := range d.Addresses {
		if err := CheckAddress(a); err != nil {
			bad("address %d: %v", i, err)
		}
		for _, b := range d.Addresses[:i] {
			if a == b {
				bad("address %s listed twice", a)
			}
		}
	}
	if d.IsExit() {
		// Parse only accepts canonical summaries, so a summary that does not survive its own text is not one.
		if s, err := exitports.Parse(d.Exit.String()); err != nil || s.String() != d.Exit.String() {
			bad("exit summary %q is not canonical", d.Exit.String())
		}
	}
	if len(d.Family) > MaxFamily {
		bad("%d family members, more than %d", len(d.Family), MaxFamily)
	}
	for i, f := range d.Family {
		if f == d.Identity {
			bad("family lists the relay itself")
		}
		if i > 0 && bytes.Compare(d.Family[i-1][:], f[:]) >= 0 {
			bad("family is not sorted without duplicates at member %d", i)
		}
	}
	if d.Country != "" && (len(d.Country) != 2 || !isUpper(d.Country[0]) || !isUpper(d.Country[1])) {
		bad("country %q is not an upper-case ISO 3166-1 alpha-2 code", d.Country)
	}
	if len(d.Region) > MaxRegionLen || !printable(d.Region) {
		bad("region %q: want at most %d bytes of printable ASCII", d.Region, MaxRegionLen)
	}
	if len(d.Software) > MaxSoftwareLen || !printable(d.Software) {
		bad("software %q: want at most %d bytes of printable ASCII", d.Software, MaxSoftwareLen)
	}
	if d.Name != "" {
		if err := CheckName(d.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(d.Rendezvous) > MaxRendezvous {
		bad("%d rendezvous, more than %d", len(d.Rendezvous), MaxRendezvous)
	}
	for i, rv := range d.Rendezvous {
		if err := CheckAddress(rv.Addr); err != nil {
			bad("rendezvous %d: %v", i, err)
		}
		if rv.LinkKey == d.LinkKey {
			bad("rendezvous %d is the relay itself", i)
		}
		for _, prev := range d.Rendezvous[:i] {
			if rv.LinkKey == prev.LinkKey {
				bad("rendezvous %s listed twice", rv.LinkKey)
			}
			if rv.Addr == prev.Addr {
				bad("rendezvous address %s listed twice", rv.Addr)
			}
		}
	}
	if d.IPv6 && !d.IsExit() {
		bad("a relay that is not an exit says it carries IPv6")
	}
	if d.Seq > MaxSeq {
		bad("seq %d is more than %d", d.Seq, uint64(MaxSeq))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	return nil
}

// CheckAddress reports why a cannot be a public address others connect to: an unspecified,
// multicast or zoned address, an IPv4 address written as IPv6 (it has exactly one form here, the
// IPv4 one), or port 0. The genesis file holds its bootstrap and STUN addresses to the same rules.
func CheckAddress(a netip.AddrPort) error {
	ip := a.Addr()
	switch {
	case !ip.IsValid():
		return errors.New("no address")
	case ip.IsUnspecified():
		return fmt.Errorf("%s is unspecified", ip)
	case ip.IsMulticast():
		return fmt.Errorf("%s is multicast", ip)
	case ip.Zone() != "":
		return fmt.Errorf("%s has a zone", ip)
	case ip.Is4In6():
		return fmt.Errorf("%s is an IPv4 address in IPv6 form; write %s", ip, ip.Unmap())
	case a.Port() == 0:
		return fmt.Errorf("%s has port 0", a)
	}
	return nil
}

// MaxUnix is 9999-12-31T23:59:59Z, the last time the wire formats hold: descriptors and directory
// documents write times as whole seconds since 1970 in 8 bytes, up to here, which keeps every value
// inside what time.Time compares correctly.
const MaxUnix = 253402300799

// CheckTime reports why t cannot be written exactly as a wire time (see MaxUnix), so that decoding
// what was encoded gives the same time back.
func CheckTime(t time.Time) error {
	if t.Nanosecond() != 0 {
		return fmt.Errorf("%s is not a whole second", t.Format(time.RFC3339Nano))
	}
	if s := t.Unix(); s < 0 || s > MaxUnix {
		return fmt.Errorf("%s is outside 1970 to 9999", t.UTC().Format(time.RFC3339))
	}
	return nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// CheckName checks a relay name: 1 to MaxNameLen letters, digits, '-', '_' and '.'.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("name %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
