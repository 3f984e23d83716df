package stun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

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
// came from (XOR-MAPPED-ADDRESS). Anything else is an error, and gets no answer.
func Response(req []byte, from netip.AddrPort) ([]byte, error) {
	m := new(pion.Message)
	if err := pion.Decode(req, m); err != nil {
		return nil, fmt.Errorf("stun: %w", err)
	}
	if m.Type != pion.BindingRequest {
		return nil, ErrNotBinding
	}
	if m.Contains(pion.AttrFingerprint) {
		if err := pion.Fingerprint.Check(m); err != nil {
			return nil, fmt.Errorf("stun: %w", err)
		}
	}
	addr := from.Addr().Unmap()
	resp, err := pion.Build(
		pion.NewTransactionIDSetter(m.TransactionID), pion.BindingSuccess,
		&pion.XORMappedAddress{IP: net.IP(addr.AsSlice()), Port: int(from.Port())},
		pion.NewSoftware(Software), pion.Fingerprint,
	)
	if err != nil {
		return nil, err
	}
	return resp.Raw, nil
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
