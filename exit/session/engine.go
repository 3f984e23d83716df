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
	"github.com/meshvpn/meshvpn/crypto/ticket"
	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/policy"
	"github.com/meshvpn/meshvpn/network/tun"
)

// Circuit is the exit's handle on a circuit that ends here (relay.ExitCircuit in production).
type Circuit interface {
	SendMsg(t cell.MsgType, data []byte) error
	ID() uint64
	Done() <-chan struct{}
	// Binding is the circuit's handshake binding secret with this exit (onion.HopKeys.Binding):
	// session credentials are bound to it (crypto/ticket).
	Binding() [32]byte
}

// Config configures an Engine. Zero values take defaults.
type Config struct {
	TUN    tun.Device     // the exit's TUN device; the Engine owns it and closes it
	Pool   *nat.Pool      // session addresses
	Policy *policy.Policy // what the exit forwards (default policy.Default())
	Self   netip.Addr     // the exit TUN's own address: the source of ICMP errors sent to clients
	// Pool6 and Self6 carry IPv6: each session's IPv6 address, and the exit TUN's own (the source of
	// ICMPv6 errors). Without Pool6 the exit does not carry IPv6 and drops it (DropIPv6).
	Pool6 *nat.Pool
	Self6 netip.Addr
	Grace time.Duration // how long a session outlives its circuit (default 2 minutes)
	// DNS answers the sessions' queries to the tunnel resolver (exitdns.Addr); the Engine closes it.
	// Without it they meet the policy like any packet (a private address: refused).
	DNS    *exitdns.Resolver
	Logger *zap.Logger
	Rand   io.Reader
	Now    func() time.Time
}

// Stats is a snapshot of an Engine's counters.
type Stats struct {
	Sessions                    int
	Opened, Reattached, Expired uint64
	// ReattachRefused counts re-attaches whose proof did not verify under the session's credential (a
	// thief, a replay on another circuit, or a credential already used); each got a new session and
	// left the named one where it was.
	ReattachRefused uint64
	// ReattachExpired counts re-attaches naming a session this exit no longer has.
	ReattachExpired          uint64
	ToInternet, FromInternet uint64
	DropPolicy               uint64 // refused by the exit policy (answered with ICMP unreachable)
	DropNoSession            uint64 // DATA on a circuit that never sent BEGIN
	DropMalformed            uint64 // not an IPv4 packet we can read, or a bad BEGIN
	DropProtocol             uint64 // a transport other than TCP, UDP and ICMP (their checksums cover addresses we do not rewrite)
	DropIPv6                 uint64 // IPv6 at an exit that does not carry it (no Pool6); dropped rather than leaked
	DropNoCircuit            uint64 // a reply for a session whose circuit is gone (in its grace period)
	DropUnknownDest          uint64 // a packet from the TUN for no session's address
	DropTUN                  uint64 // the TUN refused a write
	// DropForeignSource counts packets whose source is not the one the session's first packet had:
	// replies go to that one address, and a stray packet must not send every flow's replies elsewhere.
	DropForeignSource uint64
	DeniedBy          map[policy.Reason]uint64
}

// Engine runs an exit's sessions.
type Engine struct {
	cfg Config

	mu     sync.RWMutex
	byName map[ticket.ID]*session
	byCirc map[uint64]attachment // every circuit that may send for a session, current or being replaced
	byID   map[uint64]*session
	nextID uint64
	attach uint64 // attachments so far

	// Packets for the TUN go through one batching writer, so that the TUN can coalesce a flow's
	// segments (GRO) instead of the kernel handling each alone.
	writer *tun.Writer

	opened, reattached, expired, out, in                   atomic.Uint64
	refused, unknownSession                                atomic.Uint64
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
	name  ticket.ID  // what the client calls it
	addr  netip.Addr // from the pool: the source the internet sees (before the kernel masquerade)
	addr6 netip.Addr // from Pool6, for IPv6; zero without it

	inner    atomic.Pointer[netip.Addr] // the client's own source address, fixed by its first packet
	inner6   atomic.Pointer[netip.Addr] // the same for IPv6, by its first IPv6 packet
	circ     atomic.Pointer[circuitRef] // where replies go
	detached atomic.Int64               // when the circuit went away (unix nanoseconds), 0 while attached

	// The credential. cur re-attaches the session; after a re-attach on circuit commitOn, next is the
	// credential the client now holds, and cur stays valid too until the client shows it has next (its
	// first packet on that circuit, or a re-attach under next): the BEGUN may have been lost with the
	// circuit, and a client that never saw it still holds cur.
	credMu   sync.Mutex
	cur      ticket.Key
	next     ticket.Key
	hasNext  bool
	commitOn atomic.Uint64 // the circuit whose first DATA retires cur (0: none)
}

type circuitRef struct{ c Circuit }

// attachment is a circuit that sends for a session.
type attachment struct {
	s   *session
	c   Circuit
	seq uint64 // order of attachment: a later one is the session's newer circuit
}

// reattach checks proof, made on the circuit c with binding b, against the session's credentials. On
// success the credential the client will now hold is next, retired by c's first packet.
func (s *session) reattach(proof [32]byte, c Circuit, b ticket.Binding) bool {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	switch {
	case s.hasNext && ticket.Verify(s.next, s.name, b, proof):
		s.cur = s.next // the client showed it has next: cur is used up
	case ticket.Verify(s.cur, s.name, b, proof):
	default:
		return false
	}
	s.next, s.hasNext = ticket.Next(s.cur, b), true
	s.commitOn.Store(c.ID())
	return true
}

// commit retires the old credential once circuit id, the one the last re-attach was made on, carries
// the client's traffic: the client has its BEGUN, so holds the next credential.
func (s *session) commit(id uint64) {
	if s.commitOn.Load() != id {
		return
	}
	s.credMu.Lock()
	if s.hasNext && s.commitOn.Load() == id {
		s.cur, s.next, s.hasNext = s.next, ticket.Key{}, false
		s.commitOn.Store(0)
	}
	s.credMu.Unlock()
}

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
	if cfg.Pool6 != nil && (!cfg.Self6.Is6() || cfg.Self6.Is4In6()) {
		errs = append(errs, fmt.Errorf("session: the exit's own TUN address %v is not IPv6", cfg.Self6))
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
		cfg:    cfg,
		byName: make(map[ticket.ID]*session),
		byCirc: make(map[uint64]attachment),
		byID:   make(map[uint64]*session),
		writer: tun.NewWriter(cfg.TUN),
		denied: make(map[policy.Reason]uint64),
		stop:   make(chan struct{}),
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
		if e.cfg.DNS != nil {
			e.cfg.DNS.Close()
		}
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
		ReattachRefused: e.refused.Load(), ReattachExpired: e.unknownSession.Load(),
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

// begin attaches circuit c to the session its BEGIN names, when the proof shows the sender holds that
// session's credential, or else to a new session, and answers BEGUN.
//
// A re-attach while the session's circuit is still alive is allowed (it is how a client replaces a
// circuit make-before-break, and only the session's owner can prove the credential): replies move to c
// at once, and the old circuit may still send for the session until it closes, so that packets in
// flight on it are not lost. A re-attach whose proof fails leaves the named session untouched.
func (e *Engine) begin(c Circuit, data []byte) {
	req, err := cell.DecodeBegin(data)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	b := c.Binding()
	ref := &circuitRef{c}

	e.mu.Lock()
	var s *session
	kept := false
	if req.Reattach {
		switch named := e.byName[req.ID]; {
		case named == nil:
			e.unknownSession.Add(1)
		case named.reattach(req.Proof, c, b):
			s, kept = named, true
			e.reattached.Add(1)
		default:
			e.refused.Add(1)
		}
	}
	if s == nil {
		if s, err = e.open(b); err != nil {
			e.mu.Unlock()
			e.cfg.Logger.Warn("exit session refused", zap.Error(err))
			return
		}
	}
	if prev, ok := e.byCirc[c.ID()]; ok && prev.s != s {
		// The circuit moves to another session: its old one no longer sends replies here.
		if cur := prev.s.circ.Load(); cur != nil && cur.c.ID() == c.ID() && prev.s.circ.CompareAndSwap(cur, nil) {
			prev.s.detached.Store(e.cfg.Now().UnixNano())
		}
	}
	s.circ.Store(ref)
	e.attach++
	e.byCirc[c.ID()] = attachment{s, c, e.attach}
	s.detached.Store(0)
	name := s.name
	e.mu.Unlock()

	_ = c.SendMsg(cell.MsgBegun, (&cell.Begun{Kept: kept, ID: name}).Encode())
}

// otherCircuit returns the latest attached circuit of s that still lives, or nil; e.mu is held.
func (e *Engine) otherCircuit(s *session) Circuit {
	var best attachment
	for _, a := range e.byCirc {
		if a.s != s || a.seq < best.seq {
			continue
		}
		select {
		case <-a.c.Done():
		default:
			best = a
		}
	}
	return best.c
}

// open makes a new session on a circuit with binding b; e.mu is held.
func (e *Engine) open(b ticket.Binding) (*session, error) {
	name, err := ticket.NewID(e.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	if e.byName[name] != nil {
		return nil, errors.New("session id collision: the random source is broken")
	}
	e.nextID++
	s := &session{id: e.nextID, name: name, cur: ticket.Open(name, b)}
	addr, err := e.cfg.Pool.Allocate(s.id)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	if e.cfg.Pool6 != nil {
		if s.addr6, err = e.cfg.Pool6.Allocate(s.id); err != nil {
			e.cfg.Pool.Release(s.id)
			return nil, err
		}
	}
	e.byName[s.name] = s
	e.byID[s.id] = s
	e.opened.Add(1)
	return s, nil
}

// toInternet checks a client's packet against the policy, gives it the session's source address and
// writes it into the TUN.
func (e *Engine) toInternet(c Circuit, pkt []byte) {
	e.mu.RLock()
	s := e.byCirc[c.ID()].s
	e.mu.RUnlock()
	if s == nil {
		e.dropNoSess.Add(1)
		return
	}
	s.commit(c.ID())
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		e.toInternet6(c, s, pkt)
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
	if e.cfg.DNS != nil && exitdns.For(h) {
		e.resolve(s, h, pkt)
		return
	}
	d := e.cfg.Policy.Decide(h.Dst, policy.Proto(h.Proto), h.DstPort)
	if !d.Allow {
		e.deny(c, pkt, d.Reason)
		return
	}
	// The session's address inside the tunnel is the one its first packet came from, for good.
	if !fixInner(&s.inner, h.Src) {
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

// resolve hands a query for the tunnel resolver to it; the answer goes, from the resolver's address to
// the query's source, through the circuit the session has when it is ready.
func (e *Engine) resolve(s *session, h nat.Header, pkt []byte) {
	e.cfg.DNS.Handle(s.id, h, pkt, func(answer []byte) {
		if ref := s.circ.Load(); ref != nil && ref.c.SendMsg(cell.MsgData, answer) == nil {
			return
		}
		e.dropNoC.Add(1)
	})
}

// deny counts a refused packet and tells the client with an ICMP "administratively prohibited", so its
// programs fail fast instead of timing out.
func (e *Engine) deny(c Circuit, pkt []byte, reason policy.Reason) {
	e.countDenied(reason)
	var buf [128]byte
	icmp, err := nat.ICMPUnreachable(buf[:0], pkt, e.cfg.Self, nat.CodeAdminProhibited)
	if err == nil {
		_ = c.SendMsg(cell.MsgData, icmp)
	}
}

// countDenied counts a packet the policy refused.
func (e *Engine) countDenied(reason policy.Reason) {
	e.dropPolicy.Add(1)
	e.denyMu.Lock()
	e.denied[reason]++
	e.denyMu.Unlock()
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
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		e.fromInternet6(pkt)
		return
	}
	h, err := nat.ParseIPv4(pkt)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	id, ok := e.cfg.Pool.Lookup(h.Dst)
	e.toSession(id, ok, pkt[:h.TotalLen], innerOf, nat.RewriteDest)
}

func innerOf(s *session) *netip.Addr { return s.inner.Load() }

// toSession returns a reply from the internet to the session its destination named in the pool (id, if
// ok): rewritten to the session's own address inside the tunnel (inner: the family's), onto the
// session's circuit.
func (e *Engine) toSession(id uint64, ok bool, pkt []byte, inner func(*session) *netip.Addr, rewrite func([]byte, netip.Addr) (netip.Addr, error)) {
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
	in, ref := inner(s), s.circ.Load()
	if in == nil || ref == nil {
		e.dropNoC.Add(1)
		return
	}
	if _, err := rewrite(pkt, *in); err != nil {
		e.dropMalformed.Add(1)
		return
	}
	if err := ref.c.SendMsg(cell.MsgData, pkt); err != nil {
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
	for id, a := range e.byCirc {
		select {
		case <-a.c.Done():
		default:
			continue
		}
		delete(e.byCirc, id)
		if ref := a.s.circ.Load(); ref != nil && ref.c.ID() == id && a.s.circ.CompareAndSwap(ref, nil) {
			if alive := e.otherCircuit(a.s); alive != nil {
				// The circuit the session moved to died, and the one it moved from still lives
				// (a replacement whose BEGUN was lost): replies go back to that one.
				a.s.circ.Store(&circuitRef{alive})
				continue
			}
			a.s.detached.Store(now.UnixNano())
		}
	}
	for id, s := range e.byID {
		if s.circ.Load() != nil {
			continue
		}
		if since := s.detached.Load(); since != 0 && now.Sub(time.Unix(0, since)) > e.cfg.Grace {
			delete(e.byID, id)
			delete(e.byName, s.name)
			e.cfg.Pool.Release(s.id)
			if e.cfg.Pool6 != nil {
				e.cfg.Pool6.Release(s.id)
			}
			e.expired.Add(1)
		}
	}
}
