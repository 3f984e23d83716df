// Package genesis is a network's trust anchor file: the network's name and id, the discovery
// authorities whose signed directories clients trust (and how many of them must agree), and where a
// new node finds the DHT and a STUN server. `meshvpn-bootstrap init` writes it once; every client and
// relay of the network ships with the same bytes, so two copies are the same network exactly when
// their files are byte-for-byte equal.
package genesis

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Limits.
const (
	MaxSize        = 64 << 10
	MaxAuthorities = 32
	MaxBootstrap   = 64
	MaxSTUN        = 64
	MaxNameLen     = 32
	MaxURLLen      = 256
)

// Genesis is a network's trust anchor.
type Genesis struct {
	// Name is the network's human name: 1 to MaxNameLen of A-Z a-z 0-9 . _ -
	Name string
	// NetworkID is random at creation (GenerateNetworkID) and never zero; descriptors and directories
	// carry it, so that nothing signed for one network is accepted in another.
	NetworkID [32]byte
	// Authorities are the discovery authorities, 1 to MaxAuthorities, no identity, URL or name twice.
	Authorities []Authority
	// Threshold is how many authorities' directories must agree (directory.Combine): at least 1, at
	// most len(Authorities), and more than half of them when there are 3 or more.
	Threshold int
	// Bootstrap are DHT nodes to start from: 1 to MaxBootstrap, no two the same.
	Bootstrap []netip.AddrPort
	// STUN are STUN servers for NAT detection: 0 to MaxSTUN, no two the same.
	STUN []netip.AddrPort
}

// Authority is one discovery authority.
type Authority struct {
	Identity keys.IdentityPublic // signs its directory documents
	// URL is where its directory is served over HTTP: an absolute http or https URL with a host and
	// no user, query or fragment, written as net/url writes it, at most MaxURLLen bytes.
	URL string
	// Name is optional, with the charset of Genesis.Name.
	Name string
}

// GenerateNetworkID returns a new network id of 32 bytes read from rand (crypto/rand.Reader for a
// real network; a fixed reader makes tests reproducible).
func GenerateNetworkID(rand io.Reader) ([32]byte, error) {
	var id [32]byte
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return [32]byte{}, fmt.Errorf("genesis: generate network id: %w", err)
	}
	if id == ([32]byte{}) {
		return [32]byte{}, errors.New("genesis: generate network id: the reader gave 32 zero bytes")
	}
	return id, nil
}

// AuthorityKeys returns the authorities' identities in file order, as directory.Combine takes them.
func (g *Genesis) AuthorityKeys() []keys.IdentityPublic {
	out := make([]keys.IdentityPublic, len(g.Authorities))
	for i, a := range g.Authorities {
		out[i] = a.Identity
	}
	return out
}

// MinThreshold returns the smallest threshold Validate allows for n authorities: a majority when there
// are 3 or more, so that no two disjoint groups of authorities can each make a consensus; 1 below that.
func MinThreshold(n int) int {
	if n >= 3 {
		return n/2 + 1
	}
	return 1
}

// Validate reports every problem with g, joined into one error. Messages use the file's keywords.
func (g *Genesis) Validate() error {
	if errs := g.problems(); len(errs) > 0 {
		return fmt.Errorf("genesis: %w", errors.Join(errs...))
	}
	return nil
}

func (g *Genesis) problems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkName(g.Name); err != nil {
		bad("name: %v", err)
	}
	if g.NetworkID == ([32]byte{}) {
		bad("network-id: missing or zero")
	}
	n := len(g.Authorities)
	if n < 1 || n > MaxAuthorities {
		bad("%d authorities, want 1 to %d", n, MaxAuthorities)
	}
	ids, urls, names := map[keys.IdentityPublic]bool{}, map[string]bool{}, map[string]bool{}
	for i, a := range g.Authorities {
		if a.Identity == (keys.IdentityPublic{}) {
			bad("authority %d: zero identity key", i+1)
		} else if ids[a.Identity] {
			bad("authority %d: identity %s listed twice", i+1, a.Identity)
		}
		if err := checkURL(a.URL); err != nil {
			bad("authority %d: url %q: %v", i+1, a.URL, err)
		} else if urls[a.URL] {
			bad("authority %d: url %s listed twice", i+1, a.URL)
		}
		if a.Name != "" {
			if err := checkName(a.Name); err != nil {
				bad("authority %d: name: %v", i+1, err)
			} else if names[a.Name] {
				bad("authority %d: name %s listed twice", i+1, a.Name)
			}
		}
		ids[a.Identity], urls[a.URL], names[a.Name] = true, true, true
	}
	if n > 0 && (g.Threshold < MinThreshold(n) || g.Threshold > n) {
		bad("threshold %d of %d authorities: want %d to %d", g.Threshold, n, MinThreshold(n), n)
	}
	checkAddrs(&errs, "bootstrap", g.Bootstrap, 1, MaxBootstrap)
	checkAddrs(&errs, "stun", g.STUN, 0, MaxSTUN)
	return errs
}

func checkAddrs(errs *[]error, kind string, addrs []netip.AddrPort, lo, hi int) {
	if len(addrs) < lo || len(addrs) > hi {
		*errs = append(*errs, fmt.Errorf("%d %s addresses, want %d to %d", len(addrs), kind, lo, hi))
	}
	seen := make(map[netip.AddrPort]bool, len(addrs))
	for _, a := range addrs {
		if err := descriptor.CheckAddress(a); err != nil {
			*errs = append(*errs, fmt.Errorf("%s %s: %v", kind, a, err))
		} else if seen[a] {
			*errs = append(*errs, fmt.Errorf("%s %s listed twice", kind, a))
		}
		seen[a] = true
	}
}

func checkName(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%q: longer than %d characters", s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: only A-Z a-z 0-9 . _ - are allowed", s)
		}
	}
	return nil
}

func checkURL(s string) error {
	if len(s) > MaxURLLen {
		return fmt.Errorf("longer than %d bytes", MaxURLLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http:// or https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("user information is not allowed")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("a query is not allowed")
	case u.Fragment != "" || u.RawFragment != "":
		return errors.New("a fragment is not allowed")
	case u.String() != s:
		return fmt.Errorf("not in canonical form; write %q", u.String())
	}
	return nil
}
