package stun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	pion "github.com/pion/stun/v3"
)

// Software is what MeshVPN's STUN messages name as their sender.
const Software = "meshvpn"

// IsMessage reports whether b looks like a STUN message (magic cookie and header), so that a socket
// that also carries other traffic can hand it here.
func IsMessage(b []byte) bool { return pion.IsMessage(b) }

// ErrNotBinding is returned for a well-formed STUN message that is not what was asked for.
var ErrNotBinding = errors.New("stun: not a binding message")

// Request returns a new Binding request and its transaction id.
func Request() ([]byte, [pion.TransactionIDSize]byte, error) {
	m, err := pion.Build(pion.TransactionID, pion.BindingRequest, pion.NewSoftware(Software), pion.Fingerprint)
	if err != nil {
		return nil, [pion.TransactionIDSize]byte{}, err
	}
	return m.Raw, m.TransactionID, nil
}

// Response builds the answer to a Binding request: a Binding success carrying the address the request
// came from (XOR-MAPPED-ADDRESS), or, for a request with a comprehension-required attribute this
// server does not support (RFC 5780's CHANGE-REQUEST above all), a Binding error response 420
// (Unknown Attribute) listing them (RFC 5389 §7.3.1, RFC 8489 §6.3.1). Anything else is an error, and gets no answer.
func Response(req []byte, from netip.AddrPort) ([]byte, error) {
	resp, _, err := answer(req, from)
	return resp, err
}

// known are the comprehension-required attributes (types below 0x8000) a Binding request may carry
// that this server understands: those of STUN itself (RFC 8489 §18.3.1). It does no authentication,
// so it answers a request with USERNAME or MESSAGE-INTEGRITY as any other; every other
// comprehension-required attribute asks for something it does not do, and an answer that ignored it
// would mislead the client (RFC 5780's CHANGE-REQUEST asks for an answer from another address or
// port: an RFC 5780 client that got a plain answer would misjudge its NAT, and coturn's waits for it).
var known = map[pion.AttrType]bool{
	pion.AttrMappedAddress: true, pion.AttrUsername: true, pion.AttrMessageIntegrity: true,
	pion.AttrErrorCode: true, pion.AttrUnknownAttributes: true, pion.AttrRealm: true, pion.AttrNonce: true,
	pion.AttrMessageIntegritySHA256: true, pion.AttrPasswordAlgorithm: true, pion.AttrUserhash: true,
	pion.AttrXORMappedAddress: true,
}

// maxUnknown bounds how many unknown attributes an error response lists, so that no request gets an
// answer much larger than itself (a reflector's amplification); a client that sends more than a few
// has no use for the whole list.
const maxUnknown = 16

// unknownAttributes returns the comprehension-required attributes of m that this server does not
// understand, each once, at most maxUnknown.
func unknownAttributes(m *pion.Message) pion.UnknownAttributes {
	var unknown pion.UnknownAttributes
	for _, a := range m.Attributes {
		if a.Type.Required() && !known[a.Type] && !slices.Contains(unknown, a.Type) && len(unknown) < maxUnknown {
			unknown = append(unknown, a.Type)
		}
	}
	return unknown
}

// outcome is what answer made of a request, for the server's counters.
type outcome int

const (
	binding          outcome = iota // a Binding success
	unknownAttribute                // a 420 error response
)

func answer(req []byte, from netip.AddrPort) ([]byte, outcome, error) {
	m := new(pion.Message)
	if err := pion.Decode(req, m); err != nil {
		return nil, 0, fmt.Errorf("stun: %w", err)
	}
	if m.Type != pion.BindingRequest {
		return nil, 0, ErrNotBinding
	}
	if m.Contains(pion.AttrFingerprint) {
		if err := pion.Fingerprint.Check(m); err != nil {
			return nil, 0, fmt.Errorf("stun: %w", err)
		}
	}
	if unknown := unknownAttributes(m); len(unknown) > 0 {
		resp, err := pion.Build(
			pion.NewTransactionIDSetter(m.TransactionID), pion.BindingError,
			pion.CodeUnknownAttribute, unknown, pion.NewSoftware(Software), pion.Fingerprint,
		)
		if err != nil {
			return nil, 0, err
		}
		return resp.Raw, unknownAttribute, nil
	}
	addr := from.Addr().Unmap()
	resp, err := pion.Build(
		pion.NewTransactionIDSetter(m.TransactionID), pion.BindingSuccess,
		&pion.XORMappedAddress{IP: net.IP(addr.AsSlice()), Port: int(from.Port())},
		pion.NewSoftware(Software), pion.Fingerprint,
	)
	if err != nil {
		return nil, 0, err
	}
	return resp.Raw, binding, nil
}

// ParseResponse reads a Binding success for the transaction id and returns the address the server saw.
func ParseResponse(b []byte, id [pion.TransactionIDSize]byte) (netip.AddrPort, error) {
	m := new(pion.Message)
	if err := pion.Decode(b, m); err != nil {
		return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
	}
	if m.Type != pion.BindingSuccess {
		return netip.AddrPort{}, ErrNotBinding
	}
	if m.TransactionID != id {
		return netip.AddrPort{}, errors.New("stun: answer to another transaction")
	}
	if m.Contains(pion.AttrFingerprint) {
		if err := pion.Fingerprint.Check(m); err != nil {
			return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
		}
	}
	var xa pion.XORMappedAddress
	if err := xa.GetFrom(m); err != nil {
		return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port <= 0 || xa.Port > 65535 {
		return netip.AddrPort{}, errors.New("stun: bad mapped address")
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), nil
}
