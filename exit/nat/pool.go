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

// Pool hands each client session its own address from an IPv4 prefix, and maps addresses back to
// sessions for replies. It is safe for concurrent use.
//
// Addresses never used go first; after that, released addresses are reused oldest release first,
// so that packets still in flight for an ended session (or a remote host's memory of it) meet a
// new session as late as possible.
type Pool struct {
	prefix   netip.Prefix
	base     uint32 // network address
	size     uint64 // addresses in the prefix, network and broadcast included
	reserved map[uint32]bool
	capacity int

	mu        sync.RWMutex
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
	prefix = prefix.Masked()
	var errs []error
	if prefix.Bits() > 30 {
		errs = append(errs, fmt.Errorf("nat: pool prefix %s is too small: it needs at least /30", prefix))
	}
	p := &Pool{
		prefix:    prefix,
		base:      addrUint(prefix.Addr()),
		size:      1 << (32 - prefix.Bits()),
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
		if off := uint64(addrUint(a) - p.base); off != 0 && off != p.size-1 {
			p.reserved[addrUint(a)] = true
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

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uintAddr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
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
		return uintAddr(a), nil
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
	return uintAddr(a), nil
}

// fresh returns the next address never handed out, skipping reserved ones.
func (p *Pool) fresh() (uint32, bool) {
	for p.next < p.size-1 {
		a := p.base + uint32(p.next)
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
	if !addr.Is4() {
		return 0, false
	}
	p.mu.RLock()
	session, ok = p.byAddr[addrUint(addr)]
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
