package authority

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// signedDocument returns a document of auth with serial, chained to prev, ready to commit.
func signedDocument(t *testing.T, auth *keys.Identity, serial uint64, prev [32]byte, entries []directory.Entry, bundle []byte) *published {
	t.Helper()
	now := time.Unix(1_800_000_000+int64(serial), 0)
	d := &directory.Directory{NetworkID: checkNetwork, Serial: serial, ValidAfter: now, ValidUntil: now.Add(time.Hour), Entries: entries}
	if serial > 1 {
		d.Previous = prev
	}
	raw, err := d.Sign(auth)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPublished(raw, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStoreKeepsRelaysAndTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), DBFile)
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	s.db.NoSync = true // a thousand commits; durability is not what is tested here
	auth, _ := keys.GenerateIdentity(rand.Reader)
	rid, _ := keys.GenerateIdentity(rand.Reader)
	raw := signedBy(t, rid, 3, nil)
	d, _ := descriptor.Parse(raw)
	r := &relayState{desc: d, digest: descriptor.Digest(raw)}
	r.record = record{FirstSeen: checkNow, LastSeen: checkNow, Addr: addrA, Descriptor: raw, Bandwidth: 5, Latency: time.Millisecond}
	r.addProbe(Probe{At: checkNow, OK: true, RTT: time.Millisecond, Bandwidth: 5}, 10)
	gone := keys.IdentityPublic{9}
	relays := map[keys.IdentityPublic]*relayState{rid.Public(): r, gone: r}
	bundle, _ := directory.EncodeBundle([][]byte{raw})
	entries := []directory.Entry{{Identity: rid.Public(), Descriptor: r.digest, Flags: directory.Running}}

	var prev [32]byte
	var last *published
	total := uint64(keepDirectories + 3)
	for serial := uint64(1); serial <= total; serial++ {
		last = signedDocument(t, auth, serial, prev, entries, bundle)
		var forget []keys.IdentityPublic
		if serial == 2 {
			delete(relays, gone)
			forget = []keys.IdentityPublic{gone}
		}
		if err := s.commit(relays, forget, last); err != nil {
			t.Fatal(err)
		}
		prev = last.hash
	}
	// A record that cannot be decoded is dropped at load, not fatal.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRelays).Put([]byte("junk"), []byte("{")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := openStore(path); err == nil {
		t.Fatal("the database opened twice")
	}
	st, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if st.broken != 1 || len(st.relays) != 1 {
		t.Fatalf("loaded %d relays, %d broken; want 1 and 1", len(st.relays), st.broken)
	}
	got := st.relays[rid.Public()]
	if got == nil || got.digest != r.digest || got.Addr != addrA || len(got.Probes) != 1 || got.Latency != time.Millisecond || !got.FirstSeen.Equal(checkNow) {
		t.Fatalf("relay reloaded as %+v", got)
	}
	if st.latest == nil || st.latest.doc.Serial != total || st.latest.hash != last.hash || string(st.latest.bundle) != string(bundle) {
		t.Fatalf("latest reloaded as %+v", st.latest)
	}
	for serial, kept := range map[uint64]bool{1: false, total - keepDirectories: false, total - keepDirectories + 1: true, total: true} {
		b, err := s.directory(serial)
		if err != nil || (b != nil) != kept {
			t.Errorf("document %d: kept %v (%v), want %v", serial, b != nil, err, kept)
		}
	}
	var bundles int
	s.db.View(func(tx *bolt.Tx) error { bundles = tx.Bucket(bucketBundles).Stats().KeyN; return nil })
	if bundles != 1 {
		t.Errorf("%d bundles kept, want the latest only", bundles)
	}
}
