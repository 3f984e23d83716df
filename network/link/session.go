package link

import (
	"crypto/cipher"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/crypto/replay"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// rekeyAfterMessages is when a session's sender asks for a new handshake (WireGuard's figure); far
	// below the counter's end, so a rekey has all the time it needs.
	rekeyAfterMessages = 1 << 60
	// rejectAfterMessages is the last counter a session uses. Stopping 2^13 short of 2^64 keeps a
	// replay window's worth of counters from ever wrapping.
	rejectAfterMessages = math.MaxUint64 - (1 << 13)
)

// session is one handshake's pair of transport keys and the state that goes with them. A link has up
// to three at a time (current, previous, next); every one of them is in the node's index table, so a
// transport packet finds its session by receiver index alone.
type session struct {
	link        *Link
	localIndex  uint32 // the index the peer puts in packets to us
	remoteIndex uint32 // the index we put in packets to the peer
	initiator   bool
	born        time.Duration // node clock

	send, recv cipher.AEAD

	// sendCounter is the next counter to seal with. Send takes counters with one atomic add, so
	// concurrent senders never share a nonce, and packets may leave slightly out of order, which the
	// receiver's window allows.
	sendCounter atomic.Uint64

	// heard is set by the first authenticated packet received under the session. For a responder
	// that is the confirmation that the initiator has the keys, which makes the session usable for
	// sending; for an initiator it starts the previous session's retirement.
	heard atomic.Bool

	// retireAt is when a session that is no longer current stops being accepted; zero means not yet
	// scheduled. Guarded by link.mu.
	retireAt time.Duration

	mu     sync.Mutex // guards window; taken only on the receive path, per session
	window replay.Window
}

func newSession(l *Link, localIndex, remoteIndex uint32, initiator bool, born time.Duration, ks *sessionKeys) (*session, error) {
	send, err := chacha20poly1305.New(ks.send[:])
	if err != nil {
		return nil, fmt.Errorf("link: session cipher: %w", err)
	}
	recv, err := chacha20poly1305.New(ks.recv[:])
	if err != nil {
		return nil, fmt.Errorf("link: session cipher: %w", err)
	}
	// The AEADs keep their own copies; nothing else needs the keys.
	clear(ks.send[:])
	clear(ks.recv[:])
	return &session{
		link:        l,
		localIndex:  localIndex,
		remoteIndex: remoteIndex,
		initiator:   initiator,
		born:        born,
		send:        send,
		recv:        recv,
	}, nil
}

// expired reports whether the session is too old to use in either direction.
func (s *session) expired(now, rejectAfter time.Duration) bool {
	return now-s.born >= rejectAfter
}

// seal writes a transport packet carrying msg under counter, with flags in its header, into dst
// (which must have room for MaxPacket bytes) and returns it. The nonce lives in caller-owned memory: the AEAD is an interface,
// so a nonce on the stack would escape and cost an allocation per packet.
func (s *session) seal(dst []byte, nonce *[12]byte, counter uint64, msg []byte, flags byte) []byte {
	putTransportHeader(dst, transportHeader{Flags: flags, ReceiverIndex: s.remoteIndex, Counter: counter})
	nonceFor(nonce, counter)
	out := s.send.Seal(dst[transportHeaderLen:transportHeaderLen], nonce[:], msg, dst[:transportHeaderLen])
	return dst[:transportHeaderLen+len(out)]
}

// open authenticates and decrypts a transport packet in place and returns the message. It does not
// consult the replay window: the caller records the counter only after the tag has verified, so a
// forged packet cannot move the window.
func (s *session) open(nonce *[12]byte, pkt []byte, counter uint64) ([]byte, error) {
	nonceFor(nonce, counter)
	body := pkt[transportHeaderLen:]
	return s.recv.Open(body[:0], nonce[:], body, pkt[:transportHeaderLen])
}

// acceptCounter records counter in the replay window and reports whether it was new.
func (s *session) acceptCounter(counter uint64) bool {
	s.mu.Lock()
	ok := s.window.Accept(counter)
	s.mu.Unlock()
	return ok
}
