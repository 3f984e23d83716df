package link

import (
	"math/rand/v2"
	"sync"
	"time"
)

// pendingHandshake is an initiation this node sent and awaits the response to.
type pendingHandshake struct {
	link  *Link
	index uint32

	mu sync.Mutex // guards hs, packet and cookied: the response path reads hs, completion wipes it
	hs *initiatorHandshake
	// packet is the initiation as sent, kept to resend with mac2 when a cookie reply comes (cookie.go);
	// cookied says that has been done.
	packet  [initiationLen]byte
	cookied bool

	nextRetry time.Duration // guarded by link.mu
}

// indexEntry is what a local index names: a pending handshake until its response arrives, a session
// after. An entry with neither is reserved while its handshake message is being computed.
type indexEntry struct {
	session   *session
	handshake *pendingHandshake
}

// indexTable maps the 32-bit indices peers put in their packets to our sessions and handshakes. Looking
// a packet up by index rather than by source address is what lets a peer roam. The transport path only
// takes the read lock.
type indexTable struct {
	mu sync.RWMutex
	m  map[uint32]indexEntry
}

func newIndexTable() *indexTable {
	return &indexTable{m: make(map[uint32]indexEntry)}
}

// reserve picks an unused random index and holds it. Zero is never used, so a zeroed field never
// names a session, and neither is STUN's magic cookie, so that no link packet looks like STUN.
func (t *indexTable) reserve() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		i := rand.Uint32()
		if i == 0 || i == stunMagicCookie {
			continue
		}
		if _, used := t.m[i]; !used {
			t.m[i] = indexEntry{}
			return i
		}
	}
}

func (t *indexTable) lookup(i uint32) indexEntry {
	t.mu.RLock()
	e := t.m[i]
	t.mu.RUnlock()
	return e
}

func (t *indexTable) session(i uint32) *session {
	t.mu.RLock()
	s := t.m[i].session
	t.mu.RUnlock()
	return s
}

func (t *indexTable) set(i uint32, e indexEntry) {
	t.mu.Lock()
	t.m[i] = e
	t.mu.Unlock()
}

// release frees a reserved index that never got an entry.
func (t *indexTable) release(i uint32) {
	t.mu.Lock()
	if e, ok := t.m[i]; ok && e.session == nil && e.handshake == nil {
		delete(t.m, i)
	}
	t.mu.Unlock()
}

// removeSession frees s's index if it still names s; checking the owner makes a late second removal
// harmless even after the index has been given to someone else.
func (t *indexTable) removeSession(s *session) {
	if s == nil {
		return
	}
	t.mu.Lock()
	if t.m[s.localIndex].session == s {
		delete(t.m, s.localIndex)
	}
	t.mu.Unlock()
}

func (t *indexTable) removeHandshake(p *pendingHandshake) {
	if p == nil {
		return
	}
	t.mu.Lock()
	if t.m[p.index].handshake == p {
		delete(t.m, p.index)
	}
	t.mu.Unlock()
}

func (t *indexTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
