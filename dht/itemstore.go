package dht

import (
	"container/list"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
)

// itemStore keeps the BEP 44 items put to us. The library's wrapper around it checks signatures,
// sizes and sequence numbers before Put; the store adds what the library's in-memory one lacks: a
// bound on the number of items (the oldest go first) and dropping expired items even when no one
// asks for them again.
type itemStore struct {
	max      int
	lifetime time.Duration
	now      func() time.Time

	mu       sync.Mutex
	byTarget map[bep44.Target]*list.Element
	byAge    list.List // *storedItem, least recently put first
}

type storedItem struct {
	target bep44.Target
	item   *bep44.Item
	at     time.Time
}

var _ bep44.Store = (*itemStore)(nil)

func newItemStore(max int, lifetime time.Duration, now func() time.Time) *itemStore {
	return &itemStore{max: max, lifetime: lifetime, now: now, byTarget: make(map[bep44.Target]*list.Element)}
}

// Put stores i, replacing the item under the same target.
func (s *itemStore) Put(i *bep44.Item) error {
	t := i.Target()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e := s.byTarget[t]; e != nil {
		si := e.Value.(*storedItem)
		si.item, si.at = i, now
		s.byAge.MoveToBack(e)
		return nil
	}
	if s.byAge.Len() >= s.max {
		s.remove(s.byAge.Front())
	}
	s.byTarget[t] = s.byAge.PushBack(&storedItem{target: t, item: i, at: now})
	return nil
}

// Get returns the live item under t, or bep44.ErrItemNotFound.
func (s *itemStore) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	e := s.byTarget[t]
	if e == nil {
		return nil, bep44.ErrItemNotFound
	}
	return e.Value.(*storedItem).item, nil
}

// Del removes the item under t.
func (s *itemStore) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byTarget[t]; e != nil {
		s.remove(e)
	}
	return nil
}

// Len returns how many live items are stored.
func (s *itemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	return s.byAge.Len()
}

func (s *itemStore) expire(now time.Time) {
	for f := s.byAge.Front(); f != nil && now.Sub(f.Value.(*storedItem).at) >= s.lifetime; f = s.byAge.Front() {
		s.remove(f)
	}
}

func (s *itemStore) remove(e *list.Element) {
	delete(s.byTarget, e.Value.(*storedItem).target)
	s.byAge.Remove(e)
}
