package authority

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// DBFile is the database's file in the data directory.
const DBFile = "discovery.db"

// keepDirectories is how many of the latest documents are kept and served: a client further behind
// than directory.MaxChainWalk does not walk the chain (ErrGap), so older ones help nobody.
const keepDirectories = directory.MaxChainWalk + 1

// Buckets. relays: identity → record (JSON). directories: serial (8 bytes, big-endian) → document.
// bundles: serial → the descriptor bundle of that document (the latest only).
var (
	bucketRelays      = []byte("relays")
	bucketDirectories = []byte("directories")
	bucketBundles     = []byte("bundles")
)

// store is the authority's database (bbolt): one file, one writer (the round), readers in parallel.
type store struct{ db *bolt.DB }

func openStore(path string) (*store, error) {
	// The file lock makes a second daemon on the same data directory fail at once instead of waiting.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("database %s is in use (is another meshvpn-discovery running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRelays, bucketDirectories, bucketBundles} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

func serialKey(serial uint64) []byte { return binary.BigEndian.AppendUint64(nil, serial) }

// stored is what the database holds at start.
type stored struct {
	relays map[keys.IdentityPublic]*relayState
	latest *published // nil before the first document
	broken int        // relay records that could not be decoded (dropped)
}

func (s *store) load() (stored, error) {
	st := stored{relays: make(map[keys.IdentityPublic]*relayState)}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketRelays).ForEach(func(k, v []byte) error {
			r, err := loadRelay(v)
			if err != nil || len(k) != len(keys.IdentityPublic{}) || keys.IdentityPublic(k) != r.desc.Identity {
				st.broken++
				return nil
			}
			st.relays[r.desc.Identity] = r
			return nil
		})
		if err != nil {
			return err
		}
		k, doc := tx.Bucket(bucketDirectories).Cursor().Last()
		if k == nil {
			return nil
		}
		serial := binary.BigEndian.Uint64(k)
		bundle := tx.Bucket(bucketBundles).Get(k)
		if bundle == nil {
			return fmt.Errorf("directory %d has no descriptor bundle", serial)
		}
		p, err := newPublished(doc, bundle)
		if err != nil {
			return fmt.Errorf("directory %d: %w", serial, err)
		}
		if p.doc.Serial != serial {
			return fmt.Errorf("directory stored as %d has serial %d", serial, p.doc.Serial)
		}
		st.latest = p
		return nil
	})
	return st, err
}

// commit writes a round's outcome in one transaction: the relays' records (deleting those in
// forget), the new document and its bundle, and prunes old documents. A document is served only
// after this returned, so that no document is served that a restart would not know about.
func (s *store) commit(relays map[keys.IdentityPublic]*relayState, forget []keys.IdentityPublic, p *published) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRelays)
		for id, r := range relays {
			v, err := r.encode()
			if err != nil {
				return err
			}
			if err := rb.Put(id[:], v); err != nil {
				return err
			}
		}
		for _, id := range forget {
			if err := rb.Delete(id[:]); err != nil {
				return err
			}
		}
		k := serialKey(p.doc.Serial)
		if err := tx.Bucket(bucketDirectories).Put(k, p.raw); err != nil {
			return err
		}
		bb := tx.Bucket(bucketBundles)
		if err := bb.Put(k, p.bundle); err != nil {
			return err
		}
		// Only the latest bundle is served.
		if err := deleteBelow(bb, p.doc.Serial); err != nil {
			return err
		}
		if p.doc.Serial > keepDirectories {
			return deleteBelow(tx.Bucket(bucketDirectories), p.doc.Serial-keepDirectories+1)
		}
		return nil
	})
}

// deleteBelow deletes the keys of b below serial.
func deleteBelow(b *bolt.Bucket, serial uint64) error {
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < serial; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// directory returns the stored document with serial, or nil.
func (s *store) directory(serial uint64) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDirectories).Get(serialKey(serial)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}
