package onion

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/crypto/kdf"
	"github.com/meshvpn/meshvpn/crypto/replay"
)

const (
	// TagLen is the AEAD tag length of every suite.
	TagLen = 16
	// NonceLen is the length of a layer's nonce field on the wire: the key generation's epoch, modulo
	// 256, in the top byte and a 56-bit counter below it.
	NonceLen = 8
	// Overhead is what one layer adds to a cell: a tag and a nonce field.
	Overhead = TagLen + NonceLen

	// RotateAfterBytes is how many bytes one key seals before the sender ratchets to the next generation
	// (design: circuit keys are replaced after 1 GB or 1 hour; the hour is the caller's clock).
	RotateAfterBytes = 1 << 30

	// maxCounter is the last counter a generation may use; the next cell moves to a new generation. At
	// full cells the byte budget is spent after about 760,000 cells, long before.
	maxCounter = 1<<56 - 1
	// maxSkip is how many generations a sender may be ahead of what its receiver last saw. A sender only
	// rotates after it has sealed something under the current key, so it gets this far ahead only when
	// every cell of several generations in a row was lost.
	maxSkip = 8
)

// Nonce domains: whether a cell ends at the hop that opens the layer (or, backward, started at the hop
// that sealed it) or passes through. The domain is part of the AEAD nonce but never sent, so the hop
// before cannot tell, and a cell sealed for one reading fails under the other.
const (
	domainOnward   = 0
	domainTerminal = 1
)

// Errors a layer operation returns. Callers count drops by errors.Is against these.
var (
	// ErrAuth means a layer's tag did not verify: the cell was modified, forged, or sealed with other keys.
	ErrAuth = errors.New("onion: layer authentication failed")
	// ErrReplay means the cell's counter was seen before or is older than the replay window.
	ErrReplay = errors.New("onion: replayed cell")
	// ErrMalformed means the cell is too short for its layers or its padding is not zero.
	ErrMalformed = errors.New("onion: malformed cell")
)

// generation is one key generation of one direction.
type generation struct {
	epoch  uint64
	key    [KeySize]byte
	aead   cipher.AEAD
	window replay.Window
}

func newGeneration(s Suite, key [KeySize]byte, epoch uint64) (generation, error) {
	a, err := s.NewAEAD(key[:])
	if err != nil {
		return generation{}, err
	}
	return generation{epoch: epoch, key: key, aead: a}, nil
}

// successor derives the next generation by a one-way ratchet, so that a key taken from memory reveals
// nothing sealed under earlier generations.
func (g *generation) successor(s Suite) (generation, error) {
	k, err := kdf.Expand(g.key[:], kdf.LayerRatchet, KeySize)
	if err != nil {
		return generation{}, err
	}
	var next [KeySize]byte
	copy(next[:], k)
	clear(k)
	return newGeneration(s, next, g.epoch+1)
}

func (g *generation) wipe() {
	clear(g.key[:])
	*g = generation{}
}

// sealer is the sending side of one direction of one hop.
type sealer struct {
	suite   Suite
	gen     generation
	counter uint64 // next counter to use
	sealed  uint64 // bytes sealed under gen
	nonce   [12]byte

	// For the scheduled ratchet (ratchet.go): when the owner's sweep first saw gen (zero until then),
	// and how many of gen's cells were nudges, which carry nothing and so do not make it due.
	born   time.Time
	nudges uint64
}

func newSealer(s Suite, key [KeySize]byte) (*sealer, error) {
	g, err := newGeneration(s, key, 0)
	if err != nil {
		return nil, err
	}
	return &sealer{suite: s, gen: g}, nil
}

// rotate moves to the next key generation and forgets the current one. A generation that sealed
// nothing is kept, so that an idle circuit's hourly rotations cannot run ahead of its receiver.
func (s *sealer) rotate() error {
	if s.counter == 0 {
		return nil
	}
	next, err := s.gen.successor(s.suite)
	if err != nil {
		return fmt.Errorf("rotate layer key: %w", err)
	}
	s.gen.wipe()
	s.gen, s.counter, s.sealed = next, 0, 0
	s.born, s.nudges = time.Time{}, 0
	return nil
}

// seal encrypts region[:len(region)-Overhead] in place and appends its tag and nonce field, so that
// region becomes one sealed layer.
func (s *sealer) seal(region []byte, domain uint32) error {
	n := len(region) - Overhead
	if s.counter > maxCounter || s.sealed+uint64(n) > RotateAfterBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	wire := s.counter | s.gen.epoch<<56
	s.counter++
	s.sealed += uint64(n)
	binary.BigEndian.PutUint32(s.nonce[:4], domain)
	binary.BigEndian.PutUint64(s.nonce[4:], wire)
	s.gen.aead.Seal(region[:0], s.nonce[:], region[:n], nil)
	binary.BigEndian.PutUint64(region[n+TagLen:], wire)
	return nil
}

// opener is the receiving side of one direction of one hop. It keeps the previous generation for cells
// that were delayed past a rotation, and derives later ones when a cell names a later epoch.
type opener struct {
	suite   Suite
	cur     generation
	prev    generation
	hasPrev bool
	ahead   []generation // cur+1, cur+2, …: derived on demand, at most maxSkip
	nonce   [12]byte

	// prevSince is when the owner's sweep first saw prev (zero until then): prev is erased a window
	// after it (ratchet.go). erased says a previous generation was erased, so that a cell naming it is
	// a straggler too late to open, not a forgery.
	prevSince time.Time
	erased    bool

	gaps Gaps // holes in the counters of the cells accepted (gaps.go)
}

func newOpener(s Suite, key [KeySize]byte) (*opener, error) {
	g, err := newGeneration(s, key, 0)
	if err != nil {
		return nil, err
	}
	return &opener{suite: s, cur: g}, nil
}

// open authenticates and decrypts the sealed layer region into dst, which must hold
// len(region)-Overhead bytes and must not overlap region (a failed attempt leaves region intact, so the
// caller may try the other domain).
func (o *opener) open(dst, region []byte, domain uint32) error {
	n := len(region) - Overhead
	wire := binary.BigEndian.Uint64(region[n+TagLen:])
	binary.BigEndian.PutUint32(o.nonce[:4], domain)
	binary.BigEndian.PutUint64(o.nonce[4:], wire)
	ciphertext := region[:n+TagLen]
	counter := wire & maxCounter

	switch delta := uint8(wire>>56) - uint8(o.cur.epoch); {
	case delta == 0:
		return o.accept(&o.cur, dst, ciphertext, counter)
	case delta == 0xff:
		if !o.hasPrev {
			if o.erased {
				return ErrReplay
			}
			return ErrAuth
		}
		return o.accept(&o.prev, dst, ciphertext, counter)
	case delta <= maxSkip:
		for len(o.ahead) < int(delta) {
			last := &o.cur
			if len(o.ahead) > 0 {
				last = &o.ahead[len(o.ahead)-1]
			}
			g, err := last.successor(o.suite)
			if err != nil {
				return err
			}
			o.ahead = append(o.ahead, g)
		}
		if err := o.accept(&o.ahead[delta-1], dst, ciphertext, counter); err != nil {
			return err
		}
		o.advance(int(delta))
		return nil
	}
	return ErrAuth
}

// advance makes the generation delta steps ahead current, keeping the one just before it for stragglers
// and wiping the rest.
func (o *opener) advance(delta int) {
	if o.hasPrev {
		o.prev.wipe()
	}
	if delta == 1 {
		o.prev = o.cur
	} else {
		o.prev = o.ahead[delta-2]
		o.cur.wipe()
		for i := range delta - 2 {
			o.ahead[i].wipe()
		}
	}
	o.hasPrev, o.prevSince = true, time.Time{}
	o.cur = o.ahead[delta-1]
	rest := copy(o.ahead, o.ahead[delta:])
	clear(o.ahead[rest:])
	o.ahead = o.ahead[:rest]
}

func (o *opener) accept(g *generation, dst, ciphertext []byte, counter uint64) error {
	if _, err := g.aead.Open(dst[:0], o.nonce[:], ciphertext, nil); err != nil {
		return ErrAuth
	}
	last, seen := g.window.Highest()
	if !g.window.Accept(counter) {
		return ErrReplay
	}
	// Only authentic cells move the gap counts: no one without the layer's key can inflate them.
	switch {
	case !seen:
		o.gaps.Skipped += counter // a generation's counters start at 0
	case counter > last:
		o.gaps.Skipped += counter - last - 1
	default:
		o.gaps.Late++
	}
	return nil
}
