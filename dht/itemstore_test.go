package dht

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
)

func testItem(t *testing.T, seed byte, salt string, seq int64, value string) *bep44.Item {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make32(seed))
	i, err := bep44.NewItem([]byte(value), []byte(salt), seq, 0, key)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	s[0] = b
	return s
}

func TestItemStoreExpires(t *testing.T) {
	clock := newFakeClock()
	s := newItemStore(10, time.Hour, clock.now)
	i := testItem(t, 1, "", 1, "v")
	if err := s.Put(i); err != nil {
		t.Fatal(err)
	}
	clock.advance(59 * time.Minute)
	if _, err := s.Get(i.Target()); err != nil {
		t.Fatalf("item gone before its lifetime: %v", err)
	}
	clock.advance(time.Minute)
	if _, err := s.Get(i.Target()); !errors.Is(err, bep44.ErrItemNotFound) {
		t.Fatalf("item outlived its lifetime: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after expiry", s.Len())
	}
}

func TestItemStoreBoundEvictsOldest(t *testing.T) {
	clock := newFakeClock()
	s := newItemStore(2, time.Hour, clock.now)
	a, b, c := testItem(t, 1, "", 1, "a"), testItem(t, 2, "", 1, "b"), testItem(t, 3, "", 1, "c")
	for _, i := range []*bep44.Item{a, b} {
		s.Put(i)
		clock.advance(time.Second)
	}
	s.Put(testItem(t, 1, "", 2, "a2")) // re-put refreshes a; b is now the oldest
	clock.advance(time.Second)
	s.Put(c)
	if _, err := s.Get(b.Target()); err == nil {
		t.Errorf("the oldest item survived a full store")
	}
	if got, err := s.Get(a.Target()); err != nil || got.Seq != 2 {
		t.Errorf("refreshed item: %v, %v", got, err)
	}
	if _, err := s.Get(c.Target()); err != nil {
		t.Errorf("new item: %v", err)
	}
	if err := s.Del(c.Target()); err != nil || s.Len() != 1 {
		t.Errorf("Del: %v, Len %d", err, s.Len())
	}
}

// TestLibraryZeroExpExpiresAtOnce documents why ItemLifetime defaults to two hours: the library's
// wrapper with a zero Exp loses every item at once.
func TestLibraryZeroExpExpiresAtOnce(t *testing.T) {
	w := bep44.NewWrapper(bep44.NewMemory(), 0)
	i := testItem(t, 1, "", 1, "v")
	if err := w.Put(i); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Get(i.Target()); err == nil {
		t.Fatal("the library keeps items with a zero Exp now: reconsider the ItemLifetime default")
	}
}
