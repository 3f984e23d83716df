package cell

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/network/wireaddr"
)

// MsgType is the type of a relay message: what a hop reads from an onion payload addressed to it, or
// what it writes into one it originates.
type MsgType uint8

const (
	// MsgData carries one opaque datagram (an IP packet, later) between the client and the last hop.
	MsgData MsgType = 1
	// MsgExtend asks the last hop so far to extend the circuit to another relay.
	MsgExtend MsgType = 2
	// MsgExtended answers MsgExtend with the new hop's handshake reply.
	MsgExtended MsgType = 3
	// MsgExtendFailed answers MsgExtend when the next relay could not be reached or refused.
	MsgExtendFailed MsgType = 4
	// MsgProbe asks a hop to echo it at once (latency and liveness of each hop).
	MsgProbe MsgType = 5
	// MsgProbeReply is a hop's echo of a probe.
	MsgProbeReply MsgType = 6
	// MsgDrop is discarded by the hop that reads it (padding that goes the whole way).
	MsgDrop MsgType = 7
	// MsgBegin asks the last hop (an exit) for a session: a new one, or to re-attach an existing one to
	// this circuit with a proof of its credential (Begin), so that a circuit rebuilt after a failure
	// keeps the user's connections.
	MsgBegin MsgType = 8
	// MsgBegun answers MsgBegin with the session's id and whether it is the session asked for (Begun).
	MsgBegun MsgType = 9
)

// MsgHeaderLen is the relay message header: type (1), flags (1), length (2).
const MsgHeaderLen = 4

// MaxData returns the largest datagram a payload of payloadLen bytes carries.
func MaxData(payloadLen int) int { return payloadLen - MsgHeaderLen }

// PutMsg writes a relay message of type t carrying data into payload (zero-padding the rest) and
// returns an error if it does not fit.
func PutMsg(payload []byte, t MsgType, data []byte) error {
	if len(data) > len(payload)-MsgHeaderLen {
		return fmt.Errorf("relay message: %d bytes into a %d-byte payload", len(data), len(payload))
	}
	payload[0] = byte(t)
	payload[1] = 0
	binary.BigEndian.PutUint16(payload[2:], uint16(len(data)))
	n := copy(payload[MsgHeaderLen:], data)
	clear(payload[MsgHeaderLen+n:])
	return nil
}

// ParseMsg returns the type and data (aliasing payload) of a relay message.
func ParseMsg(payload []byte) (MsgType, []byte, error) {
	if len(payload) < MsgHeaderLen {
		return 0, nil, fmt.Errorf("%w: %d-byte relay payload", ErrMalformed, len(payload))
	}
	t := MsgType(payload[0])
	if t < MsgData || t > MsgBegun {
		return 0, nil, fmt.Errorf("%w: relay message type %d", ErrMalformed, payload[0])
	}
	if payload[1] != 0 {
		return 0, nil, fmt.Errorf("%w: relay message flags %#x", ErrMalformed, payload[1])
	}
	n := int(binary.BigEndian.Uint16(payload[2:]))
	if n > len(payload)-MsgHeaderLen {
		return 0, nil, fmt.Errorf("%w: relay message length %d in a %d-byte payload", ErrMalformed, n, len(payload))
	}
	// The padding is zeros: bytes a sender could set freely would be room for a covert mark that
	// rides along unseen by the reader (the layers are checked the same way, crypto/onion).
	if !zero(payload[MsgHeaderLen+n:]) {
		return 0, nil, fmt.Errorf("%w: nonzero padding after the relay message", ErrMalformed)
	}
	return t, payload[MsgHeaderLen : MsgHeaderLen+n], nil
}

// ExtendLen is the length of an EXTEND message's data when the next relay is reached at its address.
const ExtendLen = addrLen + 32 + 32 + ntor.ClientMessageLen

// ExtendRendezvousLen is the length of an EXTEND message's data when the next relay is behind a NAT:
// ExtendLen followed by its rendezvous's address and link key.
const ExtendRendezvousLen = ExtendLen + addrLen + 32

// addrLen is an address as EXTEND writes it (network/wireaddr).
const addrLen = wireaddr.Len

// Extend is the data of an EXTEND message: where the next relay is, who it must be, and the client's
// handshake for it.
type Extend struct {
	Addr      netip.AddrPort
	Identity  keys.IdentityPublic // the next relay's identity, which its handshake must prove
	LinkKey   keys.StaticPublic   // the next relay's link key, for the link to it
	Handshake []byte              // ntor client message
	// RendezvousAddr and RendezvousKey name the node through which the next relay, behind a NAT, is
	// dialled (link.Node.DialVia) instead of at Addr. RendezvousAddr is the zero AddrPort for a relay
	// reached directly, and then RendezvousKey must be zero too, since the encoding has no room for it.
	RendezvousAddr netip.AddrPort
	RendezvousKey  keys.StaticPublic
}

// Encode returns the EXTEND data: ExtendLen bytes, or ExtendRendezvousLen with a rendezvous.
func (e *Extend) Encode() ([]byte, error) {
	if len(e.Handshake) != ntor.ClientMessageLen {
		return nil, fmt.Errorf("extend: %d-byte handshake", len(e.Handshake))
	}
	if err := checkAddr(e.Addr); err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	n := ExtendLen
	if e.RendezvousAddr.IsValid() {
		if err := checkAddr(e.RendezvousAddr); err != nil {
			return nil, fmt.Errorf("extend: rendezvous: %w", err)
		}
		n = ExtendRendezvousLen
	} else if e.RendezvousKey != (keys.StaticPublic{}) {
		return nil, fmt.Errorf("extend: rendezvous key %s without an address", e.RendezvousKey)
	}
	b := make([]byte, n)
	wireaddr.Put(b, e.Addr)
	copy(b[19:51], e.Identity[:])
	copy(b[51:83], e.LinkKey[:])
	copy(b[83:ExtendLen], e.Handshake)
	if n == ExtendRendezvousLen {
		wireaddr.Put(b[ExtendLen:], e.RendezvousAddr)
		copy(b[ExtendLen+addrLen:], e.RendezvousKey[:])
	}
	return b, nil
}

// DecodeExtend parses EXTEND data. The handshake aliases b.
func DecodeExtend(b []byte) (Extend, error) {
	var e Extend
	if len(b) != ExtendLen && len(b) != ExtendRendezvousLen {
		return e, fmt.Errorf("%w: %d-byte extend", ErrMalformed, len(b))
	}
	a, err := wireaddr.Read(b)
	if err != nil {
		return e, fmt.Errorf("%w: extend: %w", ErrMalformed, err)
	}
	e.Addr = a
	copy(e.Identity[:], b[19:51])
	copy(e.LinkKey[:], b[51:83])
	e.Handshake = b[83:ExtendLen]
	if len(b) == ExtendRendezvousLen {
		if e.RendezvousAddr, err = wireaddr.Read(b[ExtendLen:]); err != nil {
			return Extend{}, fmt.Errorf("%w: extend: rendezvous: %w", ErrMalformed, err)
		}
		copy(e.RendezvousKey[:], b[ExtendLen+addrLen:])
	}
	return e, nil
}

// checkAddr refuses what readAddr would: an address that is not valid, unspecified, an IPv4 address in
// IPv6 form (its family byte would say 6 and readAddr refuses that), or port 0.
func checkAddr(a netip.AddrPort) error {
	switch {
	case !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified():
		return fmt.Errorf("invalid address %v", a)
	case a.Addr().Is4In6():
		return fmt.Errorf("address %v is IPv4 in IPv6 form", a)
	}
	return nil
}
