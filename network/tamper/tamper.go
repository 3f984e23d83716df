// Package tamper is an in-path attacker for tests: a UDP proxy between one peer and another that
// flips bits, duplicates, replays and reorders the datagrams it carries, without any key. MeshVPN's
// links must turn all of it into counted drops and nothing else (docs/threat-model.md).
//
// The proxy sits on two sockets: down, where the near peer's datagrams arrive (its address is learnt
// from the first one), and up, from which it sends them on to the far peer; the far peer's answers
// come back on up and leave by down. It runs until Close. Only tests and the testnet use it.
package tamper

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Config says what the attacker does to each direction's datagrams. A rate of 0 turns that
// tampering off; 1 in Flip means on average one datagram in Flip.
type Config struct {
	Flip      int // flips one random bit of a datagram
	Duplicate int // sends a datagram twice
	Replay    int // sends, after a datagram, a copy of an older one from the last History
	Reorder   int // holds a datagram back and sends it after the next one
	// History is how many past datagrams per direction a replay picks from (default 256).
	History int
	// Seed makes a run repeatable.
	Seed uint64
}

// Stats counts what the proxy did, both directions together.
type Stats struct {
	Forwarded  uint64 // datagrams received and passed on (tampered or not)
	Flipped    uint64
	Duplicated uint64
	Replayed   uint64
	Reordered  uint64
}

// Tampered is the number of datagrams the attacker spoiled or added.
func (s Stats) Tampered() uint64 { return s.Flipped + s.Duplicated + s.Replayed + s.Reordered }

// Proxy is a running tamperer.
type Proxy struct {
	down, up *net.UDPConn
	far      netip.AddrPort
	near     atomic.Pointer[netip.AddrPort]
	cfg      Config
	on       atomic.Bool

	forwarded, flipped, duplicated, replayed, reordered atomic.Uint64

	wg sync.WaitGroup
}

// New starts a proxy that carries the near peer's datagrams arriving on down to far through up, and
// far's answers back. It owns both sockets from now on. Tampering starts switched on.
func New(down, up *net.UDPConn, far netip.AddrPort, cfg Config) *Proxy {
	if cfg.History <= 0 {
		cfg.History = 256
	}
	p := &Proxy{down: down, up: up, far: far, cfg: cfg}
	p.on.Store(true)
	p.wg.Add(2)
	go p.carry(down, true, cfg.Seed)
	go p.carry(up, false, cfg.Seed+1)
	return p
}

// Listen starts a proxy on two fresh loopback sockets in front of far; peers dial Addr instead of far.
func Listen(far netip.AddrPort, cfg Config) (*Proxy, error) {
	down, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	up, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		down.Close()
		return nil, err
	}
	return New(down, up, far, cfg), nil
}

// Addr is where the near peer sends: the proxy's down socket.
func (p *Proxy) Addr() netip.AddrPort { return p.down.LocalAddr().(*net.UDPAddr).AddrPort() }

// SetTampering switches the attack on or off; the proxy keeps carrying datagrams either way.
func (p *Proxy) SetTampering(on bool) { p.on.Store(on) }

// Stats returns what the proxy did so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Forwarded: p.forwarded.Load(), Flipped: p.flipped.Load(), Duplicated: p.duplicated.Load(),
		Replayed: p.replayed.Load(), Reordered: p.reordered.Load(),
	}
}

// Close stops the proxy and closes its sockets.
func (p *Proxy) Close() error {
	err := p.down.Close()
	p.up.Close()
	p.wg.Wait()
	return err
}

func chance(r *rand.Rand, oneIn int) bool { return oneIn > 0 && r.IntN(oneIn) == 0 }

// carry reads one direction's datagrams and sends them on, tampered. fromNear says which: the near
// peer's datagrams arrive on down and go to far through up.
func (p *Proxy) carry(in *net.UDPConn, fromNear bool, seed uint64) {
	defer p.wg.Done()
	r := rand.New(rand.NewPCG(seed, 0x7a3e))
	history := make([][]byte, 0, p.cfg.History)
	var held []byte // a datagram held back for reordering
	buf := make([]byte, 65536)
	for {
		n, from, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var out *net.UDPConn
		var to netip.AddrPort
		if fromNear {
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			p.near.Store(&from)
			out, to = p.up, p.far
		} else {
			near := p.near.Load()
			if near == nil {
				continue
			}
			out, to = p.down, *near
		}
		pkt := append([]byte(nil), buf[:n]...)
		p.forwarded.Add(1)
		send := func(b []byte) { out.WriteToUDPAddrPort(b, to) }
		if !p.on.Load() {
			if held != nil {
				send(held)
				held = nil
			}
			send(pkt)
			continue
		}
		if len(history) < cap(history) {
			history = append(history, pkt)
		} else {
			history[r.IntN(len(history))] = pkt
		}
		wire := pkt
		if chance(r, p.cfg.Flip) && len(pkt) > 0 {
			wire = append([]byte(nil), pkt...)
			bit := r.IntN(len(wire) * 8)
			wire[bit/8] ^= 1 << (bit % 8)
			p.flipped.Add(1)
		}
		if held == nil && chance(r, p.cfg.Reorder) {
			held = wire
			p.reordered.Add(1)
			continue
		}
		send(wire)
		if held != nil {
			send(held)
			held = nil
		}
		if chance(r, p.cfg.Duplicate) {
			send(wire)
			p.duplicated.Add(1)
		}
		if chance(r, p.cfg.Replay) && len(history) > 1 {
			send(history[r.IntN(len(history))])
			p.replayed.Add(1)
		}
	}
}
