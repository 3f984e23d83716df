package link

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// tai64n is a TAI64N timestamp: 8 bytes of seconds offset by 2^62, then 4 bytes of nanoseconds, both
// big-endian, so that comparing the bytes compares the times. The initiator puts one in every
// initiation; a responder refuses an initiation from a key unless it is newer than the last one it
// accepted from that key, which makes a recorded initiation useless to replay.
type tai64n [timestampLen]byte

// tai64Base is TAI64's label for the Unix epoch (2^62 + 10 leap seconds, as WireGuard writes it).
const tai64Base = uint64(0x400000000000000a)

func makeTAI64N(t time.Time) tai64n {
	var ts tai64n
	binary.BigEndian.PutUint64(ts[:8], tai64Base+uint64(t.Unix()))
	binary.BigEndian.PutUint32(ts[8:], uint32(t.Nanosecond()))
	return ts
}

// after reports whether ts is strictly newer than old.
func (ts tai64n) after(old tai64n) bool {
	return bytes.Compare(ts[:], old[:]) > 0
}

// next returns the smallest timestamp after ts.
func (ts tai64n) next() tai64n {
	secs := binary.BigEndian.Uint64(ts[:8])
	nanos := binary.BigEndian.Uint32(ts[8:]) + 1
	if nanos >= uint32(time.Second) {
		secs, nanos = secs+1, 0
	}
	var n tai64n
	binary.BigEndian.PutUint64(n[:8], secs)
	binary.BigEndian.PutUint32(n[8:], nanos)
	return n
}

// timestampClock hands out strictly increasing timestamps, so two initiations made in the same clock
// tick (or with a stopped test clock, or after the wall clock stepped back) are still accepted in turn.
type timestampClock struct {
	mu   sync.Mutex
	last tai64n
}

func (c *timestampClock) stamp(now time.Time) tai64n {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := makeTAI64N(now)
	if !ts.after(c.last) {
		ts = c.last.next()
	}
	c.last = ts
	return ts
}

// defaultSeenKeys bounds the memory a flood of valid handshakes from fresh keys can take.
const defaultSeenKeys = 1 << 16

// newestTimestamps remembers, for the most recently seen static keys, the newest initiation timestamp
// accepted from each. It is bounded (least recently used keys are forgotten), so a flood of fresh keys
// cannot exhaust memory; a forgotten key's old initiations could be replayed, which gets an attacker only
// a response it cannot use, and live links keep their own copy (Link.lastInit), so their peers' old
// initiations stay refused.
type newestTimestamps struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *seenKey, most recent at the front
	byKey map[keys.StaticPublic]*list.Element
}

type seenKey struct {
	key keys.StaticPublic
	ts  tai64n
}

func newNewestTimestamps(max int) *newestTimestamps {
	return &newestTimestamps{max: max, order: list.New(), byKey: make(map[keys.StaticPublic]*list.Element)}
}

// accept records ts for key and reports true if it is newer than any timestamp accepted from key.
func (s *newestTimestamps) accept(key keys.StaticPublic, ts tai64n) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byKey[key]; ok {
		sk := e.Value.(*seenKey)
		if !ts.after(sk.ts) {
			return false
		}
		sk.ts = ts
		s.order.MoveToFront(e)
		return true
	}
	if s.order.Len() >= s.max {
		oldest := s.order.Back()
		delete(s.byKey, oldest.Value.(*seenKey).key)
		s.order.Remove(oldest)
	}
	s.byKey[key] = s.order.PushFront(&seenKey{key: key, ts: ts})
	return true
}

func (s *newestTimestamps) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
