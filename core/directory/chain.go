package directory

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// MaxChainWalk is the furthest Advance walks back from a new document to the one it holds: 1000
// periods (about six weeks of hourly documents). A client away longer starts its chain again.
const MaxChainWalk = 1000

// maxChainAuthorities bounds an encoded Chain; a genesis file names far fewer.
const maxChainAuthorities = 1024

// Head is the last document a Chain accepted from one authority.
type Head struct {
	Serial uint64
	Hash   [32]byte
}

// Chain holds, for each authority of one network, the serial and hash of the last document accepted
// from it, and accepts a newer document only if its previous-hash links lead back to that one. So a
// client that keeps its Chain (Encode, ParseChain) detects an authority, or anyone replaying its
// documents, that rolls the directory back or shows it a different history than before.
//
// The first document seen from an authority is trusted as it is (the signature and the authority list
// are Combine's to check). A Chain is not safe for concurrent use.
type Chain struct {
	networkID [32]byte
	heads     map[keys.IdentityPublic]Head
}

// NewChain returns an empty chain for the network networkID.
func NewChain(networkID [32]byte) *Chain {
	return &Chain{networkID: networkID, heads: make(map[keys.IdentityPublic]Head)}
}

// NetworkID returns the network the chain is for.
func (c *Chain) NetworkID() [32]byte { return c.networkID }

// Head returns the last document accepted from authority.
func (c *Chain) Head(authority keys.IdentityPublic) (Head, bool) {
	h, ok := c.heads[authority]
	return h, ok
}

// Forget drops what the chain holds for authority, so that its next document is trusted as a first
// one. A client does this only deliberately: after ErrGap, or when the genesis file drops an authority.
func (c *Chain) Forget(authority keys.IdentityPublic) { delete(c.heads, authority) }

// Advance checks doc (its network and signature, then its place in the authority's chain) and makes it
// the authority's head. Against the head it holds:
//
//   - a lower serial is a rollback (ErrRollback);
//   - the same serial with another hash is a fork (ErrFork); the same document again is accepted;
//   - a higher serial is accepted if following Previous back from doc reaches the head, fetching the
//     documents in between with previous (called with each serial from doc.Serial-1 down); a link that
//     does not hash to what the later document names is a fork (ErrFork). A walk longer than
//     MaxChainWalk is ErrGap, and nothing is fetched.
//
// On any error the chain is unchanged.
func (c *Chain) Advance(doc *Directory, previous func(serial uint64) (*Directory, error)) error {
	if doc.NetworkID != c.networkID {
		return fmt.Errorf("%w: authority %s serial %d", ErrWrongNetwork, doc.Authority, doc.Serial)
	}
	h, err := doc.Verify()
	if err != nil {
		return err
	}
	head, ok := c.heads[doc.Authority]
	if ok {
		if err := walk(doc, h, head, previous); err != nil {
			return fmt.Errorf("directory chain of authority %s: %w", doc.Authority, err)
		}
	}
	if c.heads == nil {
		c.heads = make(map[keys.IdentityPublic]Head)
	}
	c.heads[doc.Authority] = Head{Serial: doc.Serial, Hash: h}
	return nil
}

// walk checks that doc, whose hash is h, descends from head.
func walk(doc *Directory, h [32]byte, head Head, previous func(uint64) (*Directory, error)) error {
	switch {
	case doc.Serial < head.Serial:
		return fmt.Errorf("%w: serial %d after %d", ErrRollback, doc.Serial, head.Serial)
	case doc.Serial == head.Serial:
		if h != head.Hash {
			return fmt.Errorf("%w: two documents with serial %d (%x, held %x)", ErrFork, doc.Serial, h[:8], head.Hash[:8])
		}
		return nil
	case doc.Serial-head.Serial > MaxChainWalk:
		return fmt.Errorf("%w: serial %d after %d", ErrGap, doc.Serial, head.Serial)
	}
	cur := doc
	for cur.Serial-1 > head.Serial {
		want := cur.Serial - 1
		if previous == nil {
			return fmt.Errorf("serial %d after %d, and no way to fetch those between", doc.Serial, head.Serial)
		}
		p, err := previous(want)
		if err != nil {
			return fmt.Errorf("fetch serial %d: %w", want, err)
		}
		if p == nil {
			return fmt.Errorf("fetch serial %d: no document", want)
		}
		ph, err := p.Hash()
		if err != nil {
			return fmt.Errorf("fetched serial %d: %w", want, err)
		}
		// The hash binds the authority and serial too; checking them apart only names the problem.
		if ph != cur.Previous || p.Serial != want || p.Authority != doc.Authority {
			return fmt.Errorf("%w: serial %d names previous %x, but the document fetched for serial %d (authority %s, serial %d) hashes to %x",
				ErrFork, cur.Serial, cur.Previous[:8], want, p.Authority, p.Serial, ph[:8])
		}
		cur = p
	}
	if cur.Previous != head.Hash {
		return fmt.Errorf("%w: serial %d names previous %x, but serial %d held is %x",
			ErrFork, cur.Serial, cur.Previous[:8], head.Serial, head.Hash[:8])
	}
	return nil
}

// chainVersion is the first byte of an encoded Chain.
const chainVersion = 1

const (
	chainHeaderLen = 1 + 32 + 4
	chainEntryLen  = 32 + 8 + 32
)

// Encode returns the chain's state for keeping on disk: version 1 (1 byte), network id (32), count
// (4), then per authority sorted bytewise: identity (32), serial (8), hash (32).
func (c *Chain) Encode() []byte {
	auths := make([]keys.IdentityPublic, 0, len(c.heads))
	for a := range c.heads {
		auths = append(auths, a)
	}
	slices.SortFunc(auths, func(a, b keys.IdentityPublic) int { return bytes.Compare(a[:], b[:]) })
	b := make([]byte, 0, chainHeaderLen+len(auths)*chainEntryLen)
	b = append(b, chainVersion)
	b = append(b, c.networkID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(auths)))
	for _, a := range auths {
		h := c.heads[a]
		b = append(b, a[:]...)
		b = binary.BigEndian.AppendUint64(b, h.Serial)
		b = append(b, h.Hash[:]...)
	}
	return b
}

// ParseChain reads what Encode writes, and only that.
func ParseChain(b []byte) (*Chain, error) {
	if len(b) < chainHeaderLen || b[0] != chainVersion {
		return nil, fmt.Errorf("%w: chain state: not version %d", ErrMalformed, chainVersion)
	}
	n := binary.BigEndian.Uint32(b[33:])
	if n > maxChainAuthorities || len(b) != chainHeaderLen+int(n)*chainEntryLen {
		return nil, fmt.Errorf("%w: chain state: %d bytes for %d authorities", ErrMalformed, len(b), n)
	}
	c := NewChain([32]byte(b[1:33]))
	var last keys.IdentityPublic
	for i := range int(n) {
		e := b[chainHeaderLen+i*chainEntryLen:]
		a := keys.IdentityPublic(e[:32])
		h := Head{Serial: binary.BigEndian.Uint64(e[32:]), Hash: [32]byte(e[40:72])}
		if i > 0 && bytes.Compare(last[:], a[:]) >= 0 {
			return nil, fmt.Errorf("%w: chain state: authorities not sorted without duplicates at %d", ErrMalformed, i)
		}
		if h.Serial == 0 {
			return nil, fmt.Errorf("%w: chain state: serial 0 for authority %s", ErrMalformed, a)
		}
		c.heads[a] = h
		last = a
	}
	return c, nil
}
