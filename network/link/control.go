package link

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/wireaddr"
)

// Control messages travel inside transport packets marked flagControl, so they are as authenticated
// and as private as any other message of the link; the peer's static key is who sent them. The first
// byte is the type; integers are big-endian.
//
//	1 register    tag length 1 | tag (at most MaxTag)       node → rendezvous: introduce peers to me
//	2 registered  (empty)                                   rendezvous → node
//	3 connect     peer 32                                   node → rendezvous: introduce me to peer
//	4 intro       peer 32 | address 19 | channel 4          rendezvous → both nodes of a pair
//	5 refused     what 1 | peer 32 | reason 1               rendezvous → node (what: 1 register, 3 connect)
//	6 ping        stamp 8                                   over a direct path, to confirm it
//	7 pong        stamp 8                                   the ping's stamp, back over the same path
//
// An address is a family byte (4 or 6), 16 bytes of IP (IPv4 mapped into IPv6) and a port, as in
// EXTEND cells.
const (
	ctlRegister   = 1
	ctlRegistered = 2
	ctlConnect    = 3
	ctlIntro      = 4
	ctlRefused    = 5
	ctlPing       = 6
	ctlPong       = 7
)

// MaxTag is the longest tag Register passes to its rendezvous.
const MaxTag = 64

// Reasons a rendezvous gives for refusing.
const (
	refusedNotRendezvous = 1 // this node does not serve as a rendezvous
	refusedUnknownPeer   = 2 // connect: the peer is not registered here
	refusedFull          = 3 // a limit on registrations or channels is reached
	refusedSelf          = 4 // connect: the peer is the asker
)

const addrLen = wireaddr.Len

// control is a decoded control message; which fields mean something depends on typ.
type control struct {
	typ     byte
	tag     []byte // register; aliases the message
	peer    keys.StaticPublic
	addr    netip.AddrPort // intro
	channel uint32         // intro
	what    byte           // refused
	reason  byte           // refused
	stamp   uint64         // ping, pong
}

// appendControl appends c's encoding to dst.
func appendControl(dst []byte, c *control) []byte {
	dst = append(dst, c.typ)
	switch c.typ {
	case ctlRegister:
		dst = append(dst, byte(len(c.tag)))
		dst = append(dst, c.tag...)
	case ctlConnect:
		dst = append(dst, c.peer[:]...)
	case ctlIntro:
		dst = append(dst, c.peer[:]...)
		dst = wireaddr.Append(dst, c.addr)
		dst = binary.BigEndian.AppendUint32(dst, c.channel)
	case ctlRefused:
		dst = append(dst, c.what)
		dst = append(dst, c.peer[:]...)
		dst = append(dst, c.reason)
	case ctlPing, ctlPong:
		dst = binary.BigEndian.AppendUint64(dst, c.stamp)
	}
	return dst
}

// parseControl decodes a control message. It accepts only what appendControl writes: every length
// exact, every address valid.
func parseControl(b []byte) (control, error) {
	var c control
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty control message", errMalformed)
	}
	c.typ, b = b[0], b[1:]
	want := -1
	switch c.typ {
	case ctlRegister:
		if len(b) == 0 || int(b[0]) > MaxTag || len(b) != 1+int(b[0]) {
			return c, fmt.Errorf("%w: register of %d bytes", errMalformed, len(b))
		}
		c.tag = b[1:]
		return c, nil
	case ctlRegistered:
		want = 0
	case ctlConnect:
		want = keyLen
	case ctlIntro:
		want = keyLen + addrLen + 4
	case ctlRefused:
		want = 1 + keyLen + 1
	case ctlPing, ctlPong:
		want = 8
	default:
		return c, fmt.Errorf("%w: control type %d", errMalformed, c.typ)
	}
	if len(b) != want {
		return c, fmt.Errorf("%w: control type %d with %d bytes", errMalformed, c.typ, len(b))
	}
	switch c.typ {
	case ctlConnect:
		copy(c.peer[:], b)
	case ctlIntro:
		copy(c.peer[:], b)
		a, err := wireaddr.Read(b[keyLen : keyLen+addrLen])
		if err != nil {
			return c, fmt.Errorf("%w: intro: %v", errMalformed, err)
		}
		c.addr = a
		c.channel = binary.BigEndian.Uint32(b[keyLen+addrLen:])
		if !validChannel(c.channel) {
			return c, fmt.Errorf("%w: intro with channel %#x", errMalformed, c.channel)
		}
	case ctlRefused:
		c.what = b[0]
		copy(c.peer[:], b[1:])
		c.reason = b[1+keyLen]
	case ctlPing, ctlPong:
		c.stamp = binary.BigEndian.Uint64(b)
	}
	return c, nil
}

// validChannel reports whether a rendezvous may name a channel id: never 0 (no channel), and never the
// STUN magic cookie, which sits where a relayed packet's channel does and would make it look like STUN.
func validChannel(c uint32) bool { return c != 0 && c != stunMagicCookie }
