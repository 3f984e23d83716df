package session

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/policy"
	"github.com/meshvpn/meshvpn/network/tun"
)

// Circuit is the exit's handle on a circuit that ends here (relay.ExitCircuit in production).
type Circuit interface {
	SendMsg(t cell.MsgType, data []byte) error
	ID() uint64
	Done() <-chan struct{}
}

// Config configures an Engine. Zero values take defaults.
type Config struct {
	TUN    tun.Device     // the exit's TUN device; the Engine owns it and closes it
	Pool   *nat.Pool      // session addresses
	Policy *policy.Policy // what the exit forwards (default policy.Default())
	Self   netip.Addr     // the exit TUN's own address: the source of ICMP errors sent to clients
	Grace  time.Duration  // how long a session outlives its circuit (default 2 minutes)
	Logger *zap.Logger
	Rand   io.Reader
	Now    func() time.Time
}

// Stats is a snapshot of an Engine's counters.
type Stats struct {
	Sessions                    int
	Opened, Reattached, Expired uint64
	ToInternet, FromInternet    uint64
	DropPolicy                  uint64 // refused by the exit policy (answered with ICMP unreachable)
	DropNoSession               uint64 // DATA on a circuit that never sent BEGIN
	DropMalformed               uint64 // not an IPv4 packet we can read, or a bad BEGIN
	DropProtocol                uint64 // a transport other than TCP, UDP and ICMP (their checksums cover addresses we do not rewrite)
	DropIPv6                    uint64 // IPv6 is not carried yet; dropped rather than leaked
	DropNoCircuit               uint64 // a reply for a session whose circuit is gone (in its grace period)
	DropUnknownDest             uint64 // a packet from the TUN for no session's address
	DropTUN                     uint64 // the TUN refused a write
	// DropForeignSource counts packets whose source is not the one the session's first packet had:
	// replies go to that one address, and a stray packet must not send every flow's replies elsewhere.
	DropForeignSource uint64
	DeniedBy          map[policy.Reason]uint64
}

// Engine runs an exit's sessions.
type Engine struct {
	cfg Config

	mu      sync.RWMutex
	byToken map[[cell.TokenLen]byte]*session
	byCirc  map[uint64]*session
	byID    map[uint64]*session
	nextID  uint64

	// Packets for the TUN go through one batching writer, so that the TUN can coalesce a flow's
	// segments (GRO) instead of the kernel handling each alone.
	writer *tun.Writer

	opened, reattached, expired, out, in                   atomic.Uint64
	dropPolicy, dropNoSess, dropMalformed, dropV6, dropNoC atomic.Uint64
	dropUnknown, dropTUN, dropProto, dropSource            atomic.Uint64
	denyMu                                                 sync.Mutex
	denied                                                 map[policy.Reason]uint64

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// session is one client's exit session.
type session struct {
	id    uint64
	token [cell.TokenLen]byte
	addr  netip.Addr // from the pool: the source the internet sees (before the kernel masquerade)

	inner    atomic.Pointer[netip.Addr] // the client's own source address, fixed by its first packet
	circ     atomic.Pointer[circuitRef]
	detached atomic.Int64 // when the circuit went away (unix nanoseconds), 0 while attached
}

type circuitRef struct{ c Circuit }

// New starts an exit engine reading cfg.TUN.
func New(cfg Config) (*Engine, error) {
	var errs []error
	if cfg.TUN == nil {
		errs = append(errs, errors.New("session: no TUN device"))
	}
	if cfg.Pool == nil {
		errs = append(errs, errors.New("session: no address pool"))
	}
	if !cfg.Self.Is4() {
		errs = append(errs, fmt.Errorf("session: the exit's own TUN address %v is not IPv4", cfg.Self))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:     cfg,
		byToken: make(map[[cell.TokenLen]byte]*session),
		byCirc:  make(map[uint64]*session),
		byID:    make(map[uint64]*session),
		writer:  tun.NewWriter(cfg.TUN),
		denied:  make(map[policy.Reason]uint64),
		stop:    make(chan struct{}),
	}
	e.wg.Add(2)
	go e.readTUN()
	go e.janitor()
	return e, nil
}

// Close stops the engine and closes its TUN device.
func (e *Engine) Close() error {
	var err error
	e.once.Do(func() {
		close(e.stop)
		e.writer.Close()
		err = e.cfg.TUN.Close()
		e.wg.Wait()
	})
	return err
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.RLock()
	n := len(e.byID)
	e.mu.RUnlock()
	e.denyMu.Lock()
	denied := make(map[policy.Reason]uint64, len(e.denied))
	for r, c := range e.denied {
		denied[r] = c
	}
	e.denyMu.Unlock()
	return Stats{
		Sessions: n, Opened: e.opened.Load(), Reattached: e.reattached.Load(), Expired: e.expired.Load(),
		ToInternet: e.out.Load(), FromInternet: e.in.Load(),
		DropPolicy: e.dropPolicy.Load(), DropNoSession: e.dropNoSess.Load(), DropMalformed: e.dropMalformed.Load(),
		DropIPv6: e.dropV6.Load(), DropNoCircuit: e.dropNoC.Load(), DropUnknownDest: e.dropUnknown.Load(),
		DropTUN: e.dropTUN.Load(), DropProtocol: e.dropProto.Load(), DropForeignSource: e.dropSource.Load(), DeniedBy: denied,
	}
}

// Handle takes a relay message that reached this exit on circuit c (the relay's Exit callback).
func (e *Engine) Handle(c Circuit, t cell.MsgType, data []byte) {
	switch t {
	case cell.MsgBegin:
		e.begin(c, data)
	case cell.MsgData:
		e.toInternet(c, data)
	}
}

// begin attaches circuit c to the session its token names, or to a new one, and answers BEGUN.
func (e *Engine) begin(c Circuit, data []byte) {
	if len(data) != cell.TokenLen {
		e.dropMalformed.Add(1)
		return
	}
	var token [cell.TokenLen]byte
	copy(token[:], data)
	ref := &circuitRef{c}

	e.mu.Lock()
	s := e.byToken[token]
	if token == ([cell.TokenLen]byte{}) || s == nil {
		var err error
		if s, err = e.open(); err != nil {
			e.mu.Unlock()
			e.cfg.Logger.Warn("exit session refused", zap.Error(err))
			return
		}
	} else {
		e.reattached.Add(1)
	}
	if old := s.circ.Swap(ref); old != nil && old.c.ID() != c.ID() {
		delete(e.byCirc, old.c.ID())
	}
	if prev := e.byCirc[c.ID()]; prev != nil && prev != s {
		prev.circ.CompareAndSwap(ref, nil) // the circuit moves to another session
	}
	e.byCirc[c.ID()] = s
	s.detached.Store(0)
	token = s.token
	e.mu.Unlock()

	_ = c.SendMsg(cell.MsgBegun, token[:])
}

// open makes a new session; e.mu is held.
func (e *Engine) open() (*session, error) {
	e.nextID++
	s := &session{id: e.nextID}
	if _, err := io.ReadFull(e.cfg.Rand, s.token[:]); err != nil {
		return nil, fmt.Errorf("session token: %w", err)
	}
	addr, err := e.cfg.Pool.Allocate(s.id)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	e.byToken[s.token] = s
	e.byID[s.id] = s
	e.opened.Add(1)
	return s, nil
}

// toInternet checks a client's packet against the policy, gives it the session's source address and
// writes it into the TUN.
func (e *Engine) toInternet(c Circuit, pkt []byte) {
	e.mu.RLock()
	s := e.byCirc[c.ID()]
	e.mu.RUnlock()
	if s == nil {
		e.dropNoSess.Add(1)
		return
	}
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		e.dropV6.Add(1)
		return
	}
	h, err := nat.ParseIPv4(pkt)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	switch policy.Proto(h.Proto) {
	case policy.ProtoTCP, policy.ProtoUDP, policy.ProtoICMP:
	default:
		e.dropProto.Add(1)
		return
	}
	d := e.cfg.Policy.Decide(h.Dst, policy.Proto(h.Proto), h.DstPort)
	if !d.Allow {
		e.deny(c, pkt, d.Reason)
		return
	}
	// The session's address inside the tunnel is the one its first packet came from, for good: every
	// reply is written back to it, so a packet from elsewhere (a client's connection made outside its
	// tunnel and routed in later) must not move it — that once sent a download's replies to an address
	// the client does not have in the tunnel, and its kernel reset the connection.
	if in := s.inner.Load(); in == nil {
		src := h.Src
		if !s.inner.CompareAndSwap(nil, &src) && *s.inner.Load() != h.Src {
			e.dropSource.Add(1)
			return
		}
	} else if *in != h.Src {
		e.dropSource.Add(1)
		return
	}
	if _, err := nat.RewriteSource(pkt[:h.TotalLen], s.addr); err != nil {
		e.dropMalformed.Add(1)
		return
	}
	if err := e.writer.Write(pkt[:h.TotalLen]); err != nil {
		e.dropTUN.Add(1)
		return
	}
	e.out.Add(1)
}

// deny counts a refused packet and tells the client with an ICMP "administratively prohibited", so its
// programs fail fast instead of timing out.
func (e *Engine) deny(c Circuit, pkt []byte, reason policy.Reason) {
	e.dropPolicy.Add(1)
	e.denyMu.Lock()
	e.denied[reason]++
	e.denyMu.Unlock()
	var buf [128]byte
	icmp, err := nat.ICMPUnreachable(buf[:0], pkt, e.cfg.Self, nat.CodeAdminProhibited)
	if err == nil {
		_ = c.SendMsg(cell.MsgData, icmp)
	}
}

// readTUN carries replies from the internet back to their sessions' circuits.
func (e *Engine) readTUN() {
	defer e.wg.Done()
	n := max(1, e.cfg.TUN.BatchSize())
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Offset+65536)
	}
	sizes := make([]int, n)
	for {
		count, err := e.cfg.TUN.Read(bufs, sizes, tun.Offset)
		if err != nil {
			select {
			case <-e.stop:
				return
			default:
			}
			e.cfg.Logger.Warn("exit TUN read failed", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range count {
			e.fromInternet(bufs[i][tun.Offset : tun.Offset+sizes[i]])
		}
	}
}

func (e *Engine) fromInternet(pkt []byte) {
	h, err := nat.ParseIPv4(pkt)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	id, ok := e.cfg.Pool.Lookup(h.Dst)
	if !ok {
		e.dropUnknown.Add(1)
		return
	}
	e.mu.RLock()
	s := e.byID[id]
	e.mu.RUnlock()
	if s == nil {
		e.dropUnknown.Add(1)
		return
	}
	inner, ref := s.inner.Load(), s.circ.Load()
	if inner == nil || ref == nil {
		e.dropNoC.Add(1)
		return
	}
	if _, err := nat.RewriteDest(pkt[:h.TotalLen], *inner); err != nil {
		e.dropMalformed.Add(1)
		return
	}
	if err := ref.c.SendMsg(cell.MsgData, pkt[:h.TotalLen]); err != nil {
		e.dropNoC.Add(1)
		return
	}
	e.in.Add(1)
}

// janitor detaches sessions whose circuit is gone and expires those detached for longer than Grace.
func (e *Engine) janitor() {
	defer e.wg.Done()
	t := time.NewTicker(min(max(e.cfg.Grace/8, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.sweep()
		}
	}
}

func (e *Engine) sweep() {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, s := range e.byID {
		if ref := s.circ.Load(); ref != nil {
			select {
			case <-ref.c.Done():
				if s.circ.CompareAndSwap(ref, nil) {
					delete(e.byCirc, ref.c.ID())
					s.detached.Store(now.UnixNano())
				}
			default:
			}
			continue
		}
		if since := s.detached.Load(); since != 0 && now.Sub(time.Unix(0, since)) > e.cfg.Grace {
			delete(e.byID, id)
			delete(e.byToken, s.token)
			e.cfg.Pool.Release(s.id)
			e.expired.Add(1)
		}
	}
}
