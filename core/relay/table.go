package relay

import (
	"sync"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Link is what the engine needs of a link to a neighbour: *link.Link in production, a fake in tests.
// Its dynamic value must be comparable (a pointer), as it keys the circuit table.
type Link interface {
	Send(msg []byte) error
	SendBatch(msgs [][]byte) (int, error)
	Peer() keys.StaticPublic
}

// end is one side of a circuit at this relay: a link and the circuit's id on it.
type end struct {
	link Link
	id   cell.ID
}

const shards = 64

// table maps both ends of every circuit to it. It is sharded by circuit id so that lookups from many
// reader goroutines rarely meet on one lock.
type table struct {
	shard [shards]struct {
		sync.RWMutex
		m map[end]*circuit
	}
}

func newTable() *table {
	t := &table{}
	for i := range t.shard {
		t.shard[i].m = make(map[end]*circuit)
	}
	return t
}

func (t *table) get(e end) *circuit {
	s := &t.shard[uint32(e.id)%shards]
	s.RLock()
	c := s.m[e]
	s.RUnlock()
	return c
}

// add maps e to c unless e is taken, and reports whether it did.
func (t *table) add(e end, c *circuit) bool {
	s := &t.shard[uint32(e.id)%shards]
	s.Lock()
	defer s.Unlock()
	if _, taken := s.m[e]; taken {
		return false
	}
	s.m[e] = c
	return true
}

// remove unmaps e if it maps to c.
func (t *table) remove(e end, c *circuit) {
	s := &t.shard[uint32(e.id)%shards]
	s.Lock()
	if s.m[e] == c {
		delete(s.m, e)
	}
	s.Unlock()
}

// each calls f for every distinct circuit (under no lock; f may remove).
func (t *table) each(f func(*circuit)) {
	var all []*circuit
	seen := map[*circuit]bool{}
	for i := range t.shard {
		s := &t.shard[i]
		s.RLock()
		for _, c := range s.m {
			if !seen[c] {
				seen[c] = true
				all = append(all, c)
			}
		}
		s.RUnlock()
	}
	for _, c := range all {
		f(c)
	}
}

// len returns the number of circuits (each counted once, by its previous end).
func (t *table) len() int {
	n := 0
	for i := range t.shard {
		s := &t.shard[i]
		s.RLock()
		for e, c := range s.m {
			if c.prev == e {
				n++
			}
		}
		s.RUnlock()
	}
	return n
}
