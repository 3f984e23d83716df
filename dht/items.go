package dht

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"go.uber.org/zap"
)

// BEP 44 limits, checked before anything is sent.
const (
	// MaxValueSize bounds a value in its bencoded form ("996:" and 996 bytes at most).
	MaxValueSize = 1000
	// MaxSaltSize bounds the salt.
	MaxSaltSize = 64
)

// Errors of Publish and Fetch; test with errors.Is.
var (
	ErrNotFound      = errors.New("dht: item not found")
	ErrValueTooLarge = errors.New("dht: value too large")
	ErrSaltTooLarge  = errors.New("dht: salt too large")
	ErrStaleSeq      = errors.New("dht: sequence number does not increase")
	ErrNotStored     = errors.New("dht: no node stored the item")
	ErrBadKey        = errors.New("dht: bad key")
)

// item is a BEP 44 mutable item whose signature we have checked.
type item struct {
	seq int64
	bv  []byte // the value, bencoded
}

// Publish stores value under (the public half of key, salt) as a BEP 44 mutable item, signed with
// key, on the nodes nearest its target. seq must exceed the sequence number of the copy already in
// the DHT; the same seq with the same value republishes it (items expire after ItemLifetime). Sizes
// and seq are checked before anything is put.
func (n *Node) Publish(ctx context.Context, key ed25519.PrivateKey, salt []byte, seq int64, value []byte) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("dht publish: %w: private key is %d bytes, want %d", ErrBadKey, len(key), ed25519.PrivateKeySize)
	}
	if err := checkSalt(salt); err != nil {
		return fmt.Errorf("dht publish: %w", err)
	}
	bv, err := bencode.Marshal(value)
	if err != nil {
		return fmt.Errorf("dht publish: encode value: %w", err)
	}
	if len(bv) > MaxValueSize {
		return fmt.Errorf("dht publish: %w: %d bytes bencoded (a %d-byte value), limit %d", ErrValueTooLarge, len(bv), len(value), MaxValueSize)
	}
	var k [32]byte
	copy(k[:], key.Public().(ed25519.PublicKey))
	target := bep44.MakeMutableTarget(k, salt)
	if cur, ok := n.localItem(target, k, salt); ok {
		if err := checkSeq(cur, seq, bv); err != nil {
			return fmt.Errorf("dht publish: %w", err)
		}
	}

	ctx, done, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	l, err := n.getLookup(ctx, target, k, salt)
	if err != nil {
		return fmt.Errorf("dht publish: %w", err)
	}
	if l.found {
		if err := checkSeq(l.best, seq, bv); err != nil {
			return fmt.Errorf("dht publish: %w", err)
		}
	}
	put := bep44.Put{V: value, K: &k, Salt: salt, Seq: seq}
	put.Sign(key)
	// Our own copy, as the library's Put keeps one: Fetch falls back on it, and the next Publish
	// checks its seq against it.
	if err := bep44.NewWrapper(n.items, n.cfg.ItemLifetime).Put(put.ToItem()); err != nil {
		return fmt.Errorf("dht publish: %w", err)
	}
	if len(l.ws) == 0 {
		return fmt.Errorf("dht publish: %w: none of the %d nearest nodes gave a write token", ErrNotStored, l.asked)
	}
	stored, errs := toAll(l.ws, func(w writer) error {
		return n.query(ctx, w.addr, "put", krpc.MsgArgs{
			K: k, Salt: put.Salt, Seq: &put.Seq, Sig: put.Sig, Token: w.token, V: put.V,
		}).ToError()
	})
	n.stats.putsOut.Add(uint64(stored))
	if stored == 0 {
		return fmt.Errorf("dht publish: %w (%d nearest nodes asked): %w", ErrNotStored, len(l.ws), errors.Join(errs...))
	}
	return nil
}

// Fetch returns the value and sequence number of the BEP 44 mutable item under (pub, salt), the
// newest copy found whose signature verifies. It returns ErrNotFound if no node has one.
func (n *Node) Fetch(ctx context.Context, pub ed25519.PublicKey, salt []byte) ([]byte, int64, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, 0, fmt.Errorf("dht fetch: %w: public key is %d bytes, want %d", ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	if err := checkSalt(salt); err != nil {
		return nil, 0, fmt.Errorf("dht fetch: %w", err)
	}
	ctx, done, err := n.begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer done()
	var k [32]byte
	copy(k[:], pub)
	target := bep44.MakeMutableTarget(k, salt)
	l, err := n.getLookup(ctx, target, k, salt)
	if !l.found && (errors.Is(err, ErrNoNodes) || (err == nil && l.answered < l.asked)) {
		// A miss with nodes that did not answer, even after a resend, is no proof that the item
		// is not there: walk again once. The first walk's answers filled our table, and the
		// nodes that were too slow may have caught up.
		if ce := n.log.Check(zap.DebugLevel, "dht fetch: retrying an incomplete lookup"); ce != nil {
			ce.Write(zap.Stringer("target", krpc.ID(target)), zap.Int("asked", l.asked), zap.Int("answered", l.answered), zap.Error(err))
		}
		l, err = n.getLookup(ctx, target, k, salt)
	}
	best, found := l.best, l.found
	if local, ok := n.localItem(target, k, salt); ok && (!found || local.seq > best.seq) {
		// We may be one of the nodes nearest the target, which a lookup never asks.
		best, found, err = local, true, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("dht fetch: %w", err)
	}
	if !found {
		return nil, 0, ErrNotFound
	}
	var v []byte
	if err := bencode.Unmarshal(best.bv, &v); err != nil {
		return nil, 0, fmt.Errorf("dht fetch: item value is not a byte string: %w", err)
	}
	return v, best.seq, nil
}

// lookupResult is what a getLookup learnt.
type lookupResult struct {
	best  item // the newest verified copy, if found
	found bool
	// ws are the nodes that gave a write token, nearest first.
	ws []writer
	// asked is how many of the nearest nodes were asked with get, answered how many of them answered.
	asked, answered int
}

// getLookup finds the nodes nearest target and asks each for the item and a write token.
func (n *Node) getLookup(ctx context.Context, target bep44.Target, k [32]byte, salt []byte) (lookupResult, error) {
	nodes, err := n.nearest(ctx, target)
	if err != nil {
		return lookupResult{}, err
	}
	type answer struct {
		answered bool
		token    string
		ok       bool
		it       item
		hasItem  bool
	}
	answers := make([]answer, len(nodes))
	askEach(nodes, func(i int, addr dht.Addr) {
		n.stats.getsOut.Add(1)
		res := n.query(ctx, addr, "get", krpc.MsgArgs{
			Target: target,
			Want:   []krpc.Want{krpc.WantNodes, krpc.WantNodes6},
		})
		a := &answers[i]
		a.answered = res.ToError() == nil
		a.token, a.ok = tokenOf(res)
		a.it, a.hasItem = verifyItem(res.Reply, k, salt)
	})
	if err := ctx.Err(); err != nil {
		return lookupResult{}, err
	}
	l := lookupResult{asked: len(nodes)}
	holders := 0
	for i, a := range answers {
		if a.answered {
			l.answered++
		}
		if a.hasItem {
			holders++
			if !l.found || a.it.seq > l.best.seq {
				l.best, l.found = a.it, true
			}
		}
		if a.ok {
			l.ws = append(l.ws, writer{addr: dht.NewAddr(nodes[i].Addr.UDP()), token: a.token})
		}
	}
	if ce := n.log.Check(zap.DebugLevel, "dht get lookup"); ce != nil {
		ce.Write(zap.Stringer("target", krpc.ID(target)), zap.Int("nearest", len(nodes)), zap.Int("answered", l.answered), zap.Int("tokens", len(l.ws)), zap.Int("holders", holders))
	}
	if len(l.ws) == 0 && holders == 0 {
		return l, fmt.Errorf("%w: none of the %d nearest nodes answered get", ErrNoNodes, len(nodes))
	}
	return l, nil
}

// verifyItem returns the item in a get answer if it is the one under (k, salt) and its signature
// verifies. The storing node checked it too, but a node may lie.
func verifyItem(m krpc.Msg, k [32]byte, salt []byte) (item, bool) {
	r := m.R
	if r == nil || r.Seq == nil || len(r.V) == 0 || len(r.V) > MaxValueSize || r.K != k {
		return item{}, false
	}
	if !bep44.Verify(k[:], salt, *r.Seq, r.V, r.Sig[:]) {
		return item{}, false
	}
	return item{seq: *r.Seq, bv: bytes.Clone(r.V)}, true
}

// localItem returns the copy of the item in our own store, checked like a remote one.
func (n *Node) localItem(target bep44.Target, k [32]byte, salt []byte) (item, bool) {
	i, err := n.items.Get(target)
	if err != nil || i.K != k || !bytes.Equal(i.Salt, salt) {
		return item{}, false
	}
	bv, err := bencode.Marshal(i.V)
	if err != nil || len(bv) > MaxValueSize || !bep44.Verify(k[:], salt, i.Seq, bv, i.Sig[:]) {
		return item{}, false
	}
	return item{seq: i.Seq, bv: bv}, true
}

// checkSeq tells whether a put of (seq, bv) may replace cur.
func checkSeq(cur item, seq int64, bv []byte) error {
	switch {
	case seq < cur.seq:
		return fmt.Errorf("%w: seq %d is below the stored %d", ErrStaleSeq, seq, cur.seq)
	case seq == cur.seq && !bytes.Equal(bv, cur.bv):
		return fmt.Errorf("%w: seq %d already holds a different value", ErrStaleSeq, seq)
	}
	return nil
}

func checkSalt(salt []byte) error {
	if len(salt) > MaxSaltSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrSaltTooLarge, len(salt), MaxSaltSize)
	}
	return nil
}
