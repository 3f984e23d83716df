// Package engine is the client's packet engine: it reads IP packets from the TUN device and sends
// them through the current circuit, and writes what comes back into the TUN. The daemon swaps the
// circuit when it rebuilds one; packets read while there is none are dropped and counted, never sent
// outside the tunnel.
package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/network/tun"
)

// Circuit is where packets go (core/client.Circuit has it).
type Circuit interface {
	Send(data []byte) error
	SendBatch(datas [][]byte) (int, error)
	MaxData() int
	Done() <-chan struct{}
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	PacketsOut, PacketsIn, BytesOut, BytesIn uint64
	DropIPv6                                 uint64 // IPv6 the exit does not carry (or the tunnel has no IPv6 address): dropped inside the tunnel rather than leaked
	DropNoCircuit                            uint64 // no circuit is up (the kill switch's view from inside: nothing leaves)
	DropTooBig                               uint64 // larger than a cell carries (the TUN MTU should make this impossible)
	DropMalformed                            uint64
	DropSend                                 uint64 // the circuit refused the packet
	DropTUN                                  uint64 // the TUN refused a write
	// DropForeignSource counts packets routed into the TUN with a source that is not the tunnel's
	// address: a socket's connection made outside the tunnel (before it came up, or around it) whose
	// packets the routes now send in. The exit would answer them to an address the client does not
	// have in the tunnel, so they go nowhere but to the exit's session, whose address they must not
	// change.
	DropForeignSource uint64
	// RefusalsHeld counts refusals (ICMP administratively prohibited) not written into the TUN because
	// the refusal hook took the flow on (a detour is being built for it): the program's next try goes
	// through the detour instead of failing.
	RefusalsHeld uint64
	// Detoured counts the packets sent through a detour rather than the main circuit.
	Detoured uint64
}

// Engine moves packets between a TUN device and a circuit.
type Engine struct {
	dev  tun.Device
	src  netip.Addr // the tunnel's own address: the only source a packet may have
	src6 netip.Addr // the tunnel's own IPv6 address, the only IPv6 source; zero: IPv6 is never carried
	log  *zap.Logger
	circ atomic.Pointer[circuitRef]

	writer *tun.Writer // batches writes so the TUN can coalesce a flow's segments

	out, in, bytesOut, bytesIn                              atomic.Uint64
	dropV6, dropNoCirc, dropBig, dropBad, dropSend, dropTUN atomic.Uint64
	dropSource, held, detoured                              atomic.Uint64
	refused                                                 refusals

	// detours are the flows sent through another circuit than circ (SetDetours); nil: none.
	detours atomic.Pointer[map[Flow]*circuitRef]
	// onRefused is the refusal hook (SetRefusalHook); nil: every refusal is written into the TUN.
	onRefused atomic.Pointer[func(Flow) bool]

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// circuitRef is the circuit in use, and whether its exit carries IPv6.
type circuitRef struct {
	c    Circuit
	ipv6 bool
}

// New starts an engine reading dev, whose own (IPv4) address is src, that carries no IPv6. The engine
// owns dev and closes it on Close.
func New(dev tun.Device, src netip.Addr, log *zap.Logger) (*Engine, error) {
	return NewDual(dev, src, netip.Addr{}, log)
}

// NewDual is New for a tunnel with an IPv6 address too, src6: IPv6 from src6 goes through circuits
// whose exit carries IPv6 (SetRoute), and is dropped and counted otherwise. A zero src6 is New.
func NewDual(dev tun.Device, src, src6 netip.Addr, log *zap.Logger) (*Engine, error) {
	if dev == nil {
		return nil, errors.New("engine: no TUN device")
	}
	if !src.Is4() {
		return nil, fmt.Errorf("engine: the tunnel's address %v is not IPv4", src)
	}
	if src6.IsValid() && (!src6.Is6() || src6.Is4In6()) {
		return nil, fmt.Errorf("engine: the tunnel's IPv6 address %v is not IPv6", src6)
	}
	if log == nil {
		log = zap.NewNop()
	}
	e := &Engine{dev: dev, src: src, src6: src6, log: log, writer: tun.NewWriter(dev), stop: make(chan struct{})}
	e.wg.Add(1)
	go e.readLoop()
	return e, nil
}

// SetCircuit makes c the circuit packets go through from now on (nil: none, packets are dropped), to
// an exit that does not carry IPv6.
func (e *Engine) SetCircuit(c Circuit) { e.SetRoute(c, false) }

// SetRoute is SetCircuit for a circuit whose exit carries IPv6 when ipv6 is set: the tunnel's IPv6
// goes through it too.
func (e *Engine) SetRoute(c Circuit, ipv6 bool) {
	if c == nil {
		e.circ.Store(nil)
		return
	}
	e.circ.Store(&circuitRef{c, ipv6})
}

// Route is a circuit and whether its exit carries IPv6.
type Route struct {
	C    Circuit
	IPv6 bool
}

// SetDetours makes the flows of d go through their routes instead of the main circuit from now on
// (nil or empty: every flow takes the main circuit). A flow's IPv6 packets take its detour only when
// the detour's exit carries IPv6; otherwise they take the main circuit. The engine keeps d's routes,
// not the map.
func (e *Engine) SetDetours(d map[Flow]Route) {
	if len(d) == 0 {
		e.detours.Store(nil)
		return
	}
	m := make(map[Flow]*circuitRef, len(d))
	for f, r := range d {
		if r.C != nil {
			m[f] = &circuitRef{r.C, r.IPv6}
		}
	}
	e.detours.Store(&m)
}

// SetRefusalHook makes h see every refusal that comes back (an ICMP administratively prohibited, by
// the flow it refuses) before it is written into the TUN; when h returns true the refusal is held
// back and counted (RefusalsHeld): the program does not fail, and its next try (a TCP SYN is sent
// again after a second) takes the route the hook prepares. h runs on the circuit's reading goroutine
// and must not block. nil removes the hook.
func (e *Engine) SetRefusalHook(h func(Flow) bool) {
	if h == nil {
		e.onRefused.Store(nil)
		return
	}
	e.onRefused.Store(&h)
}

// Deliver writes a packet that came back through the circuit into the TUN (the client's OnData).
func (e *Engine) Deliver(pkt []byte) {
	if len(pkt) == 0 || pkt[0]>>4 != 4 && !(pkt[0]>>4 == 6 && e.src6.IsValid()) {
		if len(pkt) > 0 && pkt[0]>>4 == 6 {
			e.dropV6.Add(1)
		} else {
			e.dropBad.Add(1)
		}
		return
	}
	if len(pkt) >= 20 {
		if f, ok := e.refused.note(pkt); ok {
			if h := e.onRefused.Load(); h != nil && (*h)(f) {
				e.held.Add(1)
				return
			}
		}
	}
	if err := e.writer.Write(pkt); err != nil {
		e.dropTUN.Add(1)
		return
	}
	e.in.Add(1)
	e.bytesIn.Add(uint64(len(pkt)))
}

// Close stops the engine and closes the TUN device.
func (e *Engine) Close() error {
	var err error
	e.once.Do(func() {
		close(e.stop)
		e.writer.Close()
		err = e.dev.Close()
		e.wg.Wait()
	})
	return err
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		PacketsOut: e.out.Load(), PacketsIn: e.in.Load(), BytesOut: e.bytesOut.Load(), BytesIn: e.bytesIn.Load(),
		DropIPv6: e.dropV6.Load(), DropNoCircuit: e.dropNoCirc.Load(), DropTooBig: e.dropBig.Load(),
		DropMalformed: e.dropBad.Load(), DropSend: e.dropSend.Load(), DropTUN: e.dropTUN.Load(),
		DropForeignSource: e.dropSource.Load(), RefusalsHeld: e.held.Load(), Detoured: e.detoured.Load(),
	}
}

func (e *Engine) readLoop() {
	defer e.wg.Done()
	n := max(1, e.dev.BatchSize())
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Offset+65536)
	}
	sizes := make([]int, n)
	out := make([][]byte, 0, n)
	var sides []batch // the per-circuit batches of a read while detours are set
	for {
		count, err := e.dev.Read(bufs, sizes, tun.Offset)
		if err != nil {
			select {
			case <-e.stop:
				return
			default:
			}
			e.log.Debug("TUN read", zap.Error(err))
			select {
			case <-e.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		out = out[:0]
		ref := e.circ.Load()
		if det := e.detours.Load(); det != nil {
			sides = e.detour(bufs[:count], sizes, ref, *det, sides)
			continue
		}
		for i := range count {
			if pkt := bufs[i][tun.Offset : tun.Offset+sizes[i]]; e.admit(pkt, ref) {
				out = append(out, pkt)
			}
		}
		e.send(ref, out)
	}
}

// send sends the packets admitted for ref, counting what went and what the circuit refused.
func (e *Engine) send(ref *circuitRef, pkts [][]byte) {
	if len(pkts) == 0 {
		return
	}
	sent, err := ref.c.SendBatch(pkts)
	e.out.Add(uint64(sent))
	for _, p := range pkts[:sent] {
		e.bytesOut.Add(uint64(len(p)))
	}
	if err != nil {
		e.dropSend.Add(uint64(len(pkts) - sent))
	}
}

// batch is the packets of one read that go through one circuit.
type batch struct {
	ref  *circuitRef
	pkts [][]byte
}

// detour sends one read's packets while some flows have detours: each through its flow's detour, or
// the main circuit ref, in the order read within each circuit. sides is reused from read to read.
func (e *Engine) detour(bufs [][]byte, sizes []int, ref *circuitRef, det map[Flow]*circuitRef, sides []batch) []batch {
	sides = sides[:0]
	for i := range bufs {
		pkt := bufs[i][tun.Offset : tun.Offset+sizes[i]]
		r := ref
		if len(pkt) >= 20 && (pkt[0]>>4 == 4 || pkt[0]>>4 == 6 && len(pkt) >= 40) {
			if f, ok := flowOf(pkt); ok {
				if d := det[f]; d != nil && (pkt[0]>>4 == 4 || d.ipv6) {
					r = d
				}
			}
		}
		if !e.admit(pkt, r) {
			continue
		}
		if r != ref {
			e.detoured.Add(1)
		}
		j := 0
		for j < len(sides) && sides[j].ref != r {
			j++
		}
		if j == len(sides) {
			if j < cap(sides) {
				sides = sides[:j+1]
				sides[j].ref, sides[j].pkts = r, sides[j].pkts[:0]
			} else {
				sides = append(sides, batch{ref: r})
			}
		}
		sides[j].pkts = append(sides[j].pkts, pkt)
	}
	for _, b := range sides {
		e.send(b.ref, b.pkts)
	}
	return sides
}

// admit reports whether pkt may go through circuit ref, counting it as dropped if not.
func (e *Engine) admit(pkt []byte, ref *circuitRef) bool {
	switch {
	case len(pkt) == 0:
		e.dropBad.Add(1)
		return false
	case pkt[0]>>4 == 6:
		return e.admit6(pkt, ref)
	case pkt[0]>>4 != 4 || len(pkt) < 20:
		e.dropBad.Add(1)
		return false
	case netip.AddrFrom4([4]byte(pkt[12:16])) != e.src:
		e.dropSource.Add(1)
		return false
	case ref == nil:
		e.dropNoCirc.Add(1)
		return false
	case len(pkt) > ref.c.MaxData():
		e.dropBig.Add(1)
		return false
	}
	return true
}

// admit6 is admit for an IPv6 packet: it goes only from the tunnel's IPv6 address, through a circuit
// whose exit carries IPv6. Anything else is dropped here, inside the tunnel, and counted: IPv6 never
// leaves outside it.
func (e *Engine) admit6(pkt []byte, ref *circuitRef) bool {
	switch {
	case !e.src6.IsValid():
		e.dropV6.Add(1)
		return false
	case ref == nil:
		e.dropNoCirc.Add(1)
		return false
	case !ref.ipv6:
		e.dropV6.Add(1)
		return false
	case len(pkt) < 40:
		e.dropBad.Add(1)
		return false
	case netip.AddrFrom16([16]byte(pkt[8:24])) != e.src6:
		e.dropSource.Add(1)
		return false
	case len(pkt) > ref.c.MaxData():
		e.dropBig.Add(1)
		return false
	}
	return true
}
