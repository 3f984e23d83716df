package nat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrExhausted is returned by Pool.Allocate when every address of the pool is held by a session.
var ErrExhausted = errors.New("nat: address pool exhausted")

// DefaultPrefix is the pool an exit uses unless configured otherwise.
var DefaultPrefix = netip.MustParsePrefix("10.8.0.0/16")

// Pool hands each client session its own address from an IPv4 (or, from NewPool6, IPv6) prefix, and maps addresses back to
// sessions for replies. It is safe for concurrent use.
//
// Addresses never used go first; after that, released addresses are reused oldest release first,
// so that packets still in flight for an ended session (or a remote host's memory of it) meet a
// new session as late as possible.
type Pool struct {
	prefix   netip.Prefix
	base     [16]byte // network address, in its 16-byte form (an IPv4 one mapped)
	size     uint64   // addresses in the prefix, network and broadcast included
	reserved map[uint32]bool
	capacity int

	mu sync.RWMutex
	// Addresses are kept as their offset in the prefix, which fits 32 bits in either family (an IPv6
	// pool is at least a /96).
	bySession map[uint64]uint32
	byAddr    map[uint32]uint64
	next      uint64   // offset in the prefix of the next address never handed out
	released  []uint32 // released addresses, oldest first from head
	head      int
}

// NewPool returns a pool of the addresses of prefix other than its network and broadcast addresses
// and the reserved ones (the exit TUN's own address, say). The prefix is masked, so the TUN's
// address with its length (10.8.0.1/16) may be given. It reports every problem at once: a prefix
// that is not IPv4 or leaves no address, reserved addresses that are not in the prefix.
func NewPool(prefix netip.Prefix, reserved ...netip.Addr) (*Pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("nat: pool prefix %s is not IPv4", prefix)
	}
	return newPool(prefix, 30, reserved)
}

// MinPool6Bits is the shortest IPv6 pool prefix NewPool6 takes: a /96 holds 2^32 addresses, more
// sessions than an exit serves.
const MinPool6Bits = 96

// NewPool6 is NewPool for IPv6: each session's address for its IPv6 traffic, from a prefix of
// MinPool6Bits to 126 bits (a ULA such as fd00:8::/112, which the kernel then masquerades). The first
// and last addresses of the prefix are not handed out, as in an IPv4 pool: the first is the
// subnet-router anycast address.
func NewPool6(prefix netip.Prefix, reserved ...netip.Addr) (*Pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is6() || prefix.Addr().Is4In6() {
		return nil, fmt.Errorf("nat: pool prefix %s is not IPv6", prefix)
	}
	if prefix.Bits() < MinPool6Bits {
		return nil, fmt.Errorf("nat: IPv6 pool prefix %s is too large: want /%d to /126", prefix, MinPool6Bits)
	}
	return newPool(prefix, 126, reserved)
}

func newPool(prefix netip.Prefix, maxBits int, reserved []netip.Addr) (*Pool, error) {
	prefix = prefix.Masked()
	var errs []error
	if prefix.Bits() > maxBits {
		errs = append(errs, fmt.Errorf("nat: pool prefix %s is too small: it needs at least /%d", prefix, maxBits))
	}
	p := &Pool{
		prefix:    prefix,
		base:      prefix.Addr().As16(),
		size:      1 << (prefix.Addr().BitLen() - prefix.Bits()),
		reserved:  map[uint32]bool{},
		bySession: map[uint64]uint32{},
		byAddr:    map[uint32]uint64{},
		next:      1,
	}
	for _, a := range reserved {
		if !prefix.Contains(a) {
			errs = append(errs, fmt.Errorf("nat: reserved address %s is not in pool %s", a, prefix))
			continue
		}
		if off, _ := p.offset(a); off != 0 && uint64(off) != p.size-1 {
			p.reserved[off] = true
		}
	}
	if len(errs) == 0 {
		p.capacity = int(p.size) - 2 - len(p.reserved)
		if p.capacity <= 0 {
			errs = append(errs, fmt.Errorf("nat: pool %s has no address left after the reserved ones", prefix))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// offset returns a's offset in the pool's prefix, and whether a is in it.
func (p *Pool) offset(a netip.Addr) (uint32, bool) {
	if !p.prefix.Contains(a) {
		return 0, false
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[12:]) - binary.BigEndian.Uint32(p.base[12:]), true
}

// addr returns the address at offset off in the pool's prefix.
func (p *Pool) addr(off uint32) netip.Addr {
	b := p.base
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+off)
	a := netip.AddrFrom16(b)
	if p.prefix.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// Prefix returns the pool's prefix, for the kernel's masquerade rule.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// Allocate returns the session's address, giving it one if it has none. A session keeps its
// address until Release, so a client whose circuit is rebuilt to the same exit keeps its
// connections (design property 8).
func (p *Pool) Allocate(session uint64) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.bySession[session]; ok {
		return p.addr(a), nil
	}
	a, ok := p.fresh()
	if !ok {
		if p.head == len(p.released) {
			return netip.Addr{}, ErrExhausted
		}
		a = p.released[p.head]
		p.head++
		if p.head == len(p.released) {
			p.released, p.head = p.released[:0], 0
		} else if p.head >= 64 && p.head*2 >= len(p.released) {
			p.released = p.released[:copy(p.released, p.released[p.head:])]
			p.head = 0
		}
	}
	p.bySession[session] = a
	p.byAddr[a] = session
	return p.addr(a), nil
}

// fresh returns the next address never handed out, skipping reserved ones.
func (p *Pool) fresh() (uint32, bool) {
	for p.next < p.size-1 {
		a := uint32(p.next)
		p.next++
		if !p.reserved[a] {
			return a, true
		}
	}
	return 0, false
}

// Release ends the session's hold on its address. Releasing a session without one does nothing.
func (p *Pool) Release(session uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.bySession[session]
	if !ok {
		return
	}
	delete(p.bySession, session)
	delete(p.byAddr, a)
	p.released = append(p.released, a)
}

// Lookup returns the session that holds addr, for a reply arriving at the exit's TUN.
func (p *Pool) Lookup(addr netip.Addr) (session uint64, ok bool) {
	off, in := p.offset(addr)
	if !in {
		return 0, false
	}
	p.mu.RLock()
	session, ok = p.byAddr[off]
	p.mu.RUnlock()
	return session, ok
}

// Len returns the number of sessions holding an address.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.bySession)
}

// Cap returns the number of addresses the pool can hand out at once.
func (p *Pool) Cap() int { return p.capacity }
