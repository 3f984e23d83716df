package whois

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/wireaddr"
)

// The second question a relay answers: "which relays behind NATs are registered with you?". A relay
// behind a NAT cannot be asked who it is at the address it announces (its NAT drops the question), so
// an authority asks the public relays, which serve as rendezvous, and learns the identities registered
// with each and the address each registration comes from; it then fetches and checks their
// descriptors as for any other relay, and reaches them through that rendezvous. The list is paged, and
// a request is again longer than any answer.
//
//	request   magic | 3 | nonce 16 | page 1 | zero padding                 = RegisteredRequestLen bytes
//	answer    magic | 4 | nonce 16 | page 1 | pages 1 | count 1 | count × (identity 32 | address 19)
//
// An address is a family byte (4 or 6), 16 bytes of IP (IPv4 mapped into IPv6) and a port. Entries are
// sorted by identity, so pages asked one after another do not overlap while the list stays the same.
const (
	// RegisteredRequestLen is the length of every registered-relays request.
	RegisteredRequestLen = 1200
	// PerPage is the most entries one answer carries.
	PerPage = 20
	// MaxPages bounds the pages of a list (PerPage × MaxPages registrations).
	MaxPages = 255

	kindRegisteredRequest  = 3
	kindRegisteredResponse = 4

	entryLen          = 32 + addrLen
	addrLen           = wireaddr.Len
	registeredHeadLen = magicLen + 1 + NonceLen + 3
)

// Registration is one relay registered with a rendezvous, as its answer lists it.
type Registration struct {
	Identity keys.IdentityPublic
	Addr     netip.AddrPort // where its registration comes from: its NAT's public mapping
}

// RegisteredRequest returns a request for page (from 0) of the registered relays.
func RegisteredRequest(nonce [NonceLen]byte, page int) []byte {
	b := make([]byte, RegisteredRequestLen)
	n := copy(b, magic)
	b[n] = kindRegisteredRequest
	copy(b[n+1:], nonce[:])
	b[n+1+NonceLen] = byte(page)
	return b
}

// IsRegisteredRequest reports whether b starts like a registered-relays request (rather than a
// whois request, which Answer takes).
func IsRegisteredRequest(b []byte) bool {
	return len(b) > magicLen && IsWhois(b) && b[magicLen] == kindRegisteredRequest
}

// AnswerRegistered returns the page of regs that b asks for, or an error if b is not a well-formed
// registered-relays request (which gets no answer). regs need not be sorted; entries whose address
// cannot be encoded are left out.
func AnswerRegistered(b []byte, regs []Registration) ([]byte, error) {
	if len(b) != RegisteredRequestLen || !IsRegisteredRequest(b) {
		return nil, ErrNotWhois
	}
	for _, x := range b[magicLen+1+NonceLen+1:] {
		if x != 0 {
			return nil, ErrNotWhois
		}
	}
	regs = slices.DeleteFunc(slices.Clone(regs), func(r Registration) bool { return !r.Addr.IsValid() || r.Addr.Port() == 0 })
	slices.SortFunc(regs, func(x, y Registration) int { return bytes.Compare(x.Identity[:], y.Identity[:]) })
	pages := min(MaxPages, max(1, (len(regs)+PerPage-1)/PerPage))
	page := int(b[magicLen+1+NonceLen])
	var list []Registration
	if page < pages {
		list = regs[min(len(regs), page*PerPage):min(len(regs), (page+1)*PerPage)]
	}
	out := make([]byte, 0, registeredHeadLen+len(list)*entryLen)
	out = append(out, magic...)
	out = append(out, kindRegisteredResponse)
	out = append(out, b[magicLen+1:magicLen+1+NonceLen]...)
	out = append(out, byte(page), byte(pages), byte(len(list)))
	for _, r := range list {
		out = append(out, r.Identity[:]...)
		out = wireaddr.Append(out, r.Addr)
	}
	return out, nil
}

// ParseRegistered reads an answer to the registered-relays request with nonce: its page, how many
// pages the list has, and the page's entries.
func ParseRegistered(b []byte, nonce [NonceLen]byte) (page, pages int, regs []Registration, err error) {
	if len(b) < registeredHeadLen || !IsWhois(b) || b[magicLen] != kindRegisteredResponse {
		return 0, 0, nil, ErrNotWhois
	}
	p := b[magicLen+1:]
	if !bytes.Equal(p[:NonceLen], nonce[:]) {
		return 0, 0, nil, errors.New("whois: answer to another request")
	}
	page, pages, count := int(p[NonceLen]), int(p[NonceLen+1]), int(p[NonceLen+2])
	rest := p[NonceLen+3:]
	if count > PerPage || len(rest) != count*entryLen || pages == 0 || page >= pages && count > 0 {
		return 0, 0, nil, fmt.Errorf("whois: malformed registered-relays answer (%d entries in %d bytes)", count, len(rest))
	}
	regs = make([]Registration, count)
	for i := range regs {
		e := rest[i*entryLen:]
		copy(regs[i].Identity[:], e[:32])
		a, err := wireaddr.Read(e[32:entryLen])
		if err != nil {
			return 0, 0, nil, fmt.Errorf("whois: %w", err)
		}
		regs[i].Addr = a
	}
	return page, pages, regs, nil
}
