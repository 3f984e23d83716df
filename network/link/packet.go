package link

import (
	"encoding/binary"
	"errors"
)

// Packet types, the first byte of every link packet.
const (
	typeInitiation = 1
	typeResponse   = 2
	// typeCookieReply answers an initiation that a responder under load will not spend a DH on: it
	// carries a cookie that the initiator's next initiation proves it received (cookie.go).
	typeCookieReply = 3
	typeTransport   = 4
	// typeRelayed wraps a link packet of two other nodes that a rendezvous forwards (traverse.go).
	typeRelayed = 5
)

// flagControl in byte 1 of a transport packet marks a message for the link layer itself (rendezvous
// registration, introductions, path probes: control.go) rather than for OnMessage. The header is the
// AEAD's additional data, so the flag is authenticated with the message.
const flagControl = 1

// relayHeaderLen is the header of a relayed packet: type, three zero bytes and the channel.
const relayHeaderLen = 8

// Sizes of the parts of link packets, in bytes.
const (
	keyLen       = 32 // X25519 public key
	tagLen       = 16 // Poly1305 tag
	timestampLen = 12 // TAI64N

	// initiationHeaderLen is type, reserved, sender index and rekey index.
	initiationHeaderLen = 12
	// initiationNoiseLen is Noise IK's first message: e, s (encrypted) and the timestamp (encrypted).
	initiationNoiseLen = keyLen + (keyLen + tagLen) + (timestampLen + tagLen)
	// initiationMAC1At and initiationMAC2At are where mac1 and mac2 start; each covers what is
	// before it (cookie.go).
	initiationMAC1At = initiationHeaderLen + initiationNoiseLen
	initiationMAC2At = initiationMAC1At + macLen
	initiationLen    = initiationMAC2At + macLen

	// responseHeaderLen is type, reserved, sender index and receiver index.
	responseHeaderLen = 12
	// responseNoiseLen is Noise IK's second message: e and an empty encrypted payload.
	responseNoiseLen = keyLen + tagLen
	responseMAC1At   = responseHeaderLen + responseNoiseLen
	responseLen      = responseMAC1At + macLen

	// cookieReplyLen is type, reserved, receiver index, a 24-byte nonce and the sealed cookie.
	cookieReplyLen = 8 + cookieNonceLen + macLen + tagLen
	cookieNonceLen = 24 // XChaCha20-Poly1305

	// transportHeaderLen is type, reserved, receiver index and counter; it is the AEAD's additional
	// data, so every header bit is authenticated.
	transportHeaderLen = 16
	// minTransportLen is a keepalive: a header and the tag of an empty message.
	minTransportLen = transportHeaderLen + tagLen
)

const (
	// MaxMessage is the longest message Send accepts. It is chosen so that a full transport packet
	// (MaxPacket) fits a 1500-byte path MTU over IPv6 without fragmentation.
	MaxMessage = 1420
	// MaxPacket is the longest link packet: 1500 − 40 (IPv6) − 8 (UDP).
	MaxPacket = transportHeaderLen + MaxMessage + tagLen
)

// stunMagicCookie is the fixed value in bytes 4..8 of every RFC 5389 STUN message. It lets STUN share
// the link socket: indices are never allocated with this value, so no link packet carries it there.
const stunMagicCookie = 0x2112A442

// errMalformed is returned by the decoders for a packet of the right type that cannot be valid.
var errMalformed = errors.New("link: malformed packet")

// kind is what a datagram is, decided from its first bytes and length alone.
type kind uint8

const (
	kindOther       kind = iota // not a link packet: STUN or anything else
	kindMalformed               // a link packet type with a bad header or length
	kindInitiation              // handshake initiation of the right length
	kindResponse                // handshake response of the right length
	kindCookieReply             // cookie reply of the right length
	kindTransport               // transport packet of a possible length
	kindRelayed                 // a relayed packet: a channel and a link packet of two other nodes
)

// classify tells link packets from other traffic on the shared socket and checks their framing. Only
// the first byte decides whether a datagram is ours (types 1–5), except that a STUN message is never
// ours even if its first byte happens to be 1 (a STUN success response begins 0x01 0x01).
func classify(b []byte) kind {
	if len(b) == 0 {
		return kindOther
	}
	if len(b) >= 20 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie {
		return kindOther
	}
	t := b[0]
	if t < typeInitiation || t > typeRelayed {
		return kindOther
	}
	if len(b) < 4 || b[1] != 0 && !(t == typeTransport && b[1] == flagControl) || b[2] != 0 || b[3] != 0 {
		return kindMalformed
	}
	switch t {
	case typeInitiation:
		if len(b) == initiationLen {
			return kindInitiation
		}
	case typeResponse:
		if len(b) == responseLen {
			return kindResponse
		}
	case typeCookieReply:
		if len(b) == cookieReplyLen {
			return kindCookieReply
		}
	case typeTransport:
		if len(b) >= minTransportLen && len(b) <= MaxPacket {
			return kindTransport
		}
	case typeRelayed:
		if len(b) >= relayHeaderLen+minTransportLen && len(b) <= relayHeaderLen+MaxPacket {
			return kindRelayed
		}
	}
	return kindMalformed
}

// initiation is the first handshake message, initiator to responder.
type initiation struct {
	SenderIndex uint32
	// RekeyIndex is zero, or, when the handshake replaces a live session, the index the responder
	// gave that session: a responder lets such an initiation in on the link's own budget (ratelimit.go).
	RekeyIndex uint32
	Noise      [initiationNoiseLen]byte
	MAC1, MAC2 [macLen]byte
}

// response is the second handshake message, responder to initiator.
type response struct {
	SenderIndex   uint32
	ReceiverIndex uint32
	Noise         [responseNoiseLen]byte
	MAC1          [macLen]byte
}

// cookieReply is a responder's answer to an initiation it will not spend a DH on now (cookie.go).
type cookieReply struct {
	ReceiverIndex uint32 // the initiation's sender index
	Nonce         [cookieNonceLen]byte
	Sealed        [macLen + tagLen]byte // the cookie, sealed
}

// transportHeader is the clear part of a transport packet.
type transportHeader struct {
	Flags         byte // 0, or flagControl
	ReceiverIndex uint32
	Counter       uint64
}

// initiationHeader returns the first 12 bytes of an initiation. The responder's handshake binds them
// as part of the Noise prologue, so a changed index fails the handshake.
func initiationHeader(senderIndex, rekeyIndex uint32) [initiationHeaderLen]byte {
	var h [initiationHeaderLen]byte
	h[0] = typeInitiation
	binary.BigEndian.PutUint32(h[4:8], senderIndex)
	binary.BigEndian.PutUint32(h[8:12], rekeyIndex)
	return h
}

// responseHeader returns the first 12 bytes of a response; the handshake binds them too (handshake.go).
func responseHeader(senderIndex, receiverIndex uint32) [responseHeaderLen]byte {
	var h [responseHeaderLen]byte
	h[0] = typeResponse
	binary.BigEndian.PutUint32(h[4:8], senderIndex)
	binary.BigEndian.PutUint32(h[8:12], receiverIndex)
	return h
}

// appendInitiation appends the wire form of m to dst.
func appendInitiation(dst []byte, m *initiation) []byte {
	h := initiationHeader(m.SenderIndex, m.RekeyIndex)
	dst = append(dst, h[:]...)
	dst = append(dst, m.Noise[:]...)
	dst = append(dst, m.MAC1[:]...)
	return append(dst, m.MAC2[:]...)
}

// decodeInitiation parses an initiation. It checks framing only; the handshake checks the rest.
func decodeInitiation(b []byte) (initiation, error) {
	var m initiation
	if classify(b) != kindInitiation {
		return m, errMalformed
	}
	m.SenderIndex = binary.BigEndian.Uint32(b[4:8])
	m.RekeyIndex = binary.BigEndian.Uint32(b[8:12])
	copy(m.Noise[:], b[initiationHeaderLen:initiationMAC1At])
	copy(m.MAC1[:], b[initiationMAC1At:initiationMAC2At])
	copy(m.MAC2[:], b[initiationMAC2At:])
	return m, nil
}

// appendResponse appends the wire form of m to dst.
func appendResponse(dst []byte, m *response) []byte {
	h := responseHeader(m.SenderIndex, m.ReceiverIndex)
	dst = append(dst, h[:]...)
	dst = append(dst, m.Noise[:]...)
	return append(dst, m.MAC1[:]...)
}

// decodeResponse parses a response.
func decodeResponse(b []byte) (response, error) {
	var m response
	if classify(b) != kindResponse {
		return m, errMalformed
	}
	m.SenderIndex = binary.BigEndian.Uint32(b[4:8])
	m.ReceiverIndex = binary.BigEndian.Uint32(b[8:12])
	copy(m.Noise[:], b[responseHeaderLen:responseMAC1At])
	copy(m.MAC1[:], b[responseMAC1At:])
	return m, nil
}

// appendCookieReply appends the wire form of m to dst.
func appendCookieReply(dst []byte, m *cookieReply) []byte {
	var h [8]byte
	h[0] = typeCookieReply
	binary.BigEndian.PutUint32(h[4:8], m.ReceiverIndex)
	dst = append(dst, h[:]...)
	dst = append(dst, m.Nonce[:]...)
	return append(dst, m.Sealed[:]...)
}

// decodeCookieReply parses a cookie reply. It checks framing only; openCookieReply checks the rest.
func decodeCookieReply(b []byte) (cookieReply, error) {
	var m cookieReply
	if classify(b) != kindCookieReply {
		return m, errMalformed
	}
	m.ReceiverIndex = binary.BigEndian.Uint32(b[4:8])
	copy(m.Nonce[:], b[8:8+cookieNonceLen])
	copy(m.Sealed[:], b[8+cookieNonceLen:])
	return m, nil
}

// putTransportHeader writes a transport header into b[:transportHeaderLen].
func putTransportHeader(b []byte, h transportHeader) {
	_ = b[transportHeaderLen-1]
	b[0], b[1], b[2], b[3] = typeTransport, h.Flags, 0, 0
	binary.BigEndian.PutUint32(b[4:8], h.ReceiverIndex)
	binary.BigEndian.PutUint64(b[8:16], h.Counter)
}

// decodeTransport splits a transport packet into its header and its sealed body (ciphertext and tag).
func decodeTransport(b []byte) (transportHeader, []byte, error) {
	if classify(b) != kindTransport {
		return transportHeader{}, nil, errMalformed
	}
	h := transportHeader{
		Flags:         b[1],
		ReceiverIndex: binary.BigEndian.Uint32(b[4:8]),
		Counter:       binary.BigEndian.Uint64(b[8:16]),
	}
	return h, b[transportHeaderLen:], nil
}

// appendTransport appends a transport packet with the given header and sealed body to dst.
func appendTransport(dst []byte, h transportHeader, sealed []byte) []byte {
	var hb [transportHeaderLen]byte
	putTransportHeader(hb[:], h)
	dst = append(dst, hb[:]...)
	return append(dst, sealed...)
}

// nonceFor fills the AEAD nonce for counter: 4 zero bytes, then the counter big-endian, which is
// exactly bytes 8..16 of the transport header.
func nonceFor(nonce *[12]byte, counter uint64) {
	nonce[0], nonce[1], nonce[2], nonce[3] = 0, 0, 0, 0
	binary.BigEndian.PutUint64(nonce[4:], counter)
}
