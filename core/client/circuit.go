package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/crypto/ticket"
	"github.com/meshvpn/meshvpn/network/link"
)

// Circuit is one circuit the client built.
type Circuit struct {
	c    *Client
	link *link.Link
	id   cell.ID
	path []netdir.Relay

	layers  onion.Path
	binding [32]byte   // the last hop's handshake binding secret: exit session credentials bind to it
	fwdMu   sync.Mutex // serializes Wrap and sending
	bwdMu   sync.Mutex // serializes Unwrap
	gaps    onion.Gaps // the last hop's backward gaps counted so far, under bwdMu (gaps.go)
	scr     [onion.FullSize]byte
	batch   [][]byte // SendBatch's cells, reused under fwdMu

	step   chan stepResult // the reply to the build step in flight
	await  sync.Mutex      // guards want
	want   answer          // the one answer the circuit takes now (zero: none)
	liar   atomic.Int32    // the hop whose unasked answer tore the circuit down (0: none)
	probes chan probeEcho  // echoes of probes in flight (see Probe)
	probe  sync.Mutex      // one Probe at a time

	// unanswered is when (unix ns) the client sent data that nothing has come back through the
	// circuit since; 0 while every send has been followed by a cell back (Unanswered).
	unanswered atomic.Int64

	done chan struct{}
	err  atomic.Pointer[error]
	once sync.Once
}

// HopError is a build that failed at one hop: the hop did not answer its CREATE or EXTEND in time,
// refused it, or could not be reached.
type HopError struct {
	Hop  int // 1-based: 1 is the guard
	Addr netip.AddrPort
	Err  error
	// LinkUp says, for a failure at the guard, that the client's link to the guard was still up: the
	// guard did not answer, but it is reachable (a dropped or spoiled CREATE, a busy guard).
	LinkUp bool
}

func (e *HopError) Error() string { return fmt.Sprintf("hop %d (%v): %v", e.Hop, e.Addr, e.Err) }

// Unwrap returns the cause.
func (e *HopError) Unwrap() error { return e.Err }

// GuardLinkUp reports whether the build failed at the guard with the link to the guard up.
func (e *HopError) GuardLinkUp() bool { return e.Hop == 1 && e.LinkUp }

// FailedHop returns the 1-based position of the hop that failed (managers that must not import this
// package ask errors.As for an interface with this method).
func (e *HopError) FailedHop() int { return e.Hop }

type stepResult struct {
	reply  []byte // CREATED, EXTENDED or BEGUN reply (a copy)
	failed *cell.Error
}

// answer names the reply a circuit waits for: which kind, from which hop (1-based). Every other hop
// could seal a message of the same kind under its own layer key, so the hop is part of the name.
type answer struct {
	kind answerKind
	hop  int
}

type answerKind uint8

const (
	noAnswer answerKind = iota
	answerCreated
	answerExtended // EXTENDED or EXTEND_FAILED
	answerBegun
)

// expect opens the window for one answer; it is set before the request goes out.
func (circ *Circuit) expect(a answer) {
	circ.await.Lock()
	circ.want = a
	circ.await.Unlock()
}

// deliverStep hands an answer to the request in flight. An answer nobody asked for, or from a hop
// other than the one asked, is a protocol violation: it is what a hostile guard or middle would send to
// choose the client's exit session or a hop's handshake reply, so the circuit is torn down (as Tor
// closes a circuit on an unexpected EXTENDED) rather than the answer being passed on or ignored.
func (circ *Circuit) deliverStep(from answer, r stepResult) {
	circ.await.Lock()
	ok := circ.want == from && from.kind != noAnswer
	if ok {
		circ.want = answer{}
	}
	circ.await.Unlock()
	if !ok {
		circ.c.violations.Add(1)
		circ.liar.CompareAndSwap(0, int32(from.hop))
		circ.close(&cell.Error{Reason: cell.ReasonProtocol}, true)
		return
	}
	if r.reply != nil {
		r.reply = append([]byte(nil), r.reply...)
	}
	select {
	case circ.step <- r:
	default:
	}
}

func (c *Client) buildOnce(ctx context.Context, path []netdir.Relay) (*Circuit, error) {
	l, err := c.dialGuard(ctx, path[0])
	if err != nil {
		return nil, &HopError{Hop: 1, Addr: path[0].Addr, Err: err}
	}
	circ := &Circuit{c: c, path: path, step: make(chan stepResult, 1), probes: make(chan probeEcho, maxProbes), done: make(chan struct{})}
	c.register(l, circ)

	for i, hop := range path {
		hs, msg, err := ntor.NewClient(c.cfg.Rand, hop.Identity, hop.Onion, c.cfg.Offer)
		if err != nil {
			circ.close(err, true)
			return nil, err
		}
		if i == 0 {
			circ.expect(answer{answerCreated, 1})
			err = circ.sendCreate(msg)
		} else {
			circ.expect(answer{answerExtended, i}) // hop i extends the circuit to hop i+1
			rv := rendezvous(hop)
			ext := cell.Extend{Addr: hop.Addr, Identity: hop.Identity, LinkKey: hop.LinkKey, Handshake: msg,
				RendezvousAddr: rv.Addr, RendezvousKey: rv.Key}
			var data []byte
			if data, err = ext.Encode(); err == nil {
				// Every EXTEND takes the class of one naming a rendezvous: the guard sees cell
				// sizes, and must not learn that a later hop is behind a NAT.
				err = circ.sendMsgAtLeast(i, cell.MsgExtend, data, cell.ExtendRendezvousLen)
			}
		}
		if err != nil {
			circ.close(err, true)
			return nil, err
		}
		reply, err := circ.awaitStep(ctx)
		if err != nil {
			circ.close(err, true)
			failed := i + 1
			if liar := int(circ.liar.Load()); liar != 0 {
				failed = liar // a hop answered for another: the build failed at the liar
			}
			he := &HopError{Hop: failed, Addr: path[failed-1].Addr, Err: err}
			select {
			case <-l.Done():
			default:
				he.LinkUp = true
			}
			return nil, he
		}
		keys, err := hs.Finish(reply)
		if err != nil {
			circ.close(&cell.Error{Reason: cell.ReasonHandshake}, true)
			return nil, &HopError{Hop: i + 1, Addr: hop.Addr, Err: err}
		}
		circ.binding = keys.Binding
		clear(keys.Binding[:])
		circ.fwdMu.Lock()
		circ.bwdMu.Lock()
		err = circ.layers.AddHop(keys)
		circ.bwdMu.Unlock()
		circ.fwdMu.Unlock()
		if err != nil {
			circ.close(err, true)
			return nil, err
		}
	}
	return circ, nil
}

// dialGuard returns a link to the guard: through its rendezvous when it is behind a NAT (its address
// would not let the client in), at its address otherwise.
func (c *Client) dialGuard(ctx context.Context, guard netdir.Relay) (*link.Link, error) {
	rv := rendezvous(guard)
	if rv.IsZero() {
		l, err := c.node.Dial(ctx, guard.Addr, guard.LinkKey)
		if err != nil {
			return nil, fmt.Errorf("link to guard %v: %w", guard.Addr, err)
		}
		return l, nil
	}
	l, err := c.node.DialVia(ctx, guard.LinkKey, rv)
	if err != nil {
		return nil, fmt.Errorf("link to guard %v through rendezvous %v: %w", guard.Addr, rv.Addr, err)
	}
	return l, nil
}

// rendezvous is how a relay behind a NAT is reached: through the first rendezvous it names (zero for
// a public relay). The others are for when it is gone, which only a failed dial tells.
func rendezvous(r netdir.Relay) link.Rendezvous {
	if len(r.Rendezvous) == 0 {
		return link.Rendezvous{}
	}
	return link.Rendezvous{Key: r.Rendezvous[0].LinkKey, Addr: r.Rendezvous[0].Addr}
}

func (circ *Circuit) awaitStep(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, circ.c.cfg.StepTimeout)
	defer cancel()
	defer circ.expect(answer{}) // a late answer is no longer awaited
	select {
	case r := <-circ.step:
		if r.failed != nil {
			return nil, r.failed
		}
		return r.reply, nil
	case <-circ.done:
		return nil, circ.Err()
	case <-ctx.Done():
		return nil, &cell.Error{Reason: cell.ReasonTimeout}
	}
}

func (circ *Circuit) sendCreate(handshake []byte) error {
	buf := pool.Get()
	defer pool.Put(buf)
	msg := buf[:cell.HeaderLen+circ.c.cfg.Sizes[0]]
	cell.PutHeader(msg, cell.Header{Circuit: circ.id, Command: cell.Create})
	if err := (&cell.CreateBody{Depth: 1, Handshake: handshake}).Encode(msg[cell.HeaderLen:]); err != nil {
		return err
	}
	circ.c.out.Add(1)
	return circ.link.Send(msg)
}

// sendMsg seals a relay message for hop (1-based) and sends it.
func (circ *Circuit) sendMsg(hop int, t cell.MsgType, data []byte) error {
	return circ.sendMsgAtLeast(hop, t, data, len(data))
}

// sendMsgAtLeast sends data in the cell class that a message of floor bytes would take, so that the
// class does not tell what the message says (EXTEND: whether the next hop is behind a NAT).
func (circ *Circuit) sendMsgAtLeast(hop int, t cell.MsgType, data []byte, floor int) error {
	n, ok := circ.c.cfg.Sizes.For(cell.MsgHeaderLen+max(len(data), floor), hop)
	if !ok {
		return fmt.Errorf("client: %d-byte datagram is larger than a cell carries (%d)", len(data), circ.MaxData())
	}
	buf := pool.Get()
	defer pool.Put(buf)
	msg := buf[:cell.HeaderLen+n]
	body := msg[cell.HeaderLen:]
	cell.PutHeader(msg, cell.Header{Circuit: circ.id, Command: cell.Relay})
	if err := cell.PutMsg(body[:onion.PayloadLen(n, hop)], t, data); err != nil {
		return err
	}
	circ.fwdMu.Lock()
	defer circ.fwdMu.Unlock()
	if err := circ.layers.Wrap(body, hop); err != nil {
		return err
	}
	circ.c.out.Add(1)
	return circ.link.Send(msg)
}

// Send carries one datagram to the circuit's last hop.
func (circ *Circuit) Send(data []byte) error {
	select {
	case <-circ.done:
		return circ.Err()
	default:
	}
	err := circ.sendMsg(len(circ.path), cell.MsgData, data)
	if err == nil {
		circ.sent()
	}
	return err
}

// sent notes that data went out: from now on the circuit waits for something back.
func (circ *Circuit) sent() {
	if circ.unanswered.Load() == 0 {
		circ.unanswered.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// Unanswered returns since when the client has sent data through the circuit with nothing coming
// back from its last hop, or the zero time when something came back after its last send (an echo
// from a nearer hop, such as a probe's, does not count). A circuit whose hop has gone
// silent (a relay that lost its next hop but not its link to the client, or one that swallows cells)
// is one that carries the client's packets away and nothing back: this is how long that has lasted.
func (circ *Circuit) Unanswered() time.Time {
	if ns := circ.unanswered.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Begin asks the exit for a session on this circuit. With prev nil it opens a new one; with the ticket
// of a session that an earlier circuit began, it asks to re-attach that session (its address at the exit
// and its open connections) by proving the ticket's credential over this circuit's binding — a proof no
// hop can read or reuse. It returns the ticket to keep (the session's id and its next credential: each
// one re-attaches once) and kept, which is false when the exit opened a new session instead (the old one
// expired, or the proof was refused).
func (circ *Circuit) Begin(ctx context.Context, prev *ticket.Ticket) (ticket.Ticket, bool, error) {
	req := cell.Begin{}
	if prev != nil {
		req = cell.Begin{Reattach: true, ID: prev.ID, Proof: ticket.Proof(prev.Key, prev.ID, circ.binding)}
	}
	circ.expect(answer{answerBegun, len(circ.path)})
	if err := circ.sendMsg(len(circ.path), cell.MsgBegin, req.Encode()); err != nil {
		circ.expect(answer{})
		return ticket.Ticket{}, false, err
	}
	reply, err := circ.awaitStep(ctx)
	if err != nil {
		return ticket.Ticket{}, false, fmt.Errorf("begin: %w", err)
	}
	got, err := cell.DecodeBegun(reply)
	if err != nil {
		return ticket.Ticket{}, false, fmt.Errorf("begin: %w", err)
	}
	if got.Kept {
		if prev == nil || got.ID != prev.ID {
			return ticket.Ticket{}, false, fmt.Errorf("begin: %w: the exit kept a session that was not asked for", cell.ErrMalformed)
		}
		return ticket.Ticket{ID: got.ID, Key: ticket.Next(prev.Key, circ.binding)}, true, nil
	}
	return ticket.Ticket{ID: got.ID, Key: ticket.Open(got.ID, circ.binding)}, false, nil
}

// SendBatch carries several datagrams to the circuit's last hop, sealing them all and writing them with
// as few system calls as the link allows. It returns how many were sent.
func (circ *Circuit) SendBatch(datas [][]byte) (int, error) {
	select {
	case <-circ.done:
		return 0, circ.Err()
	default:
	}
	hop := len(circ.path)
	circ.fwdMu.Lock()
	defer circ.fwdMu.Unlock()
	defer func() {
		for i, b := range circ.batch {
			pool.Put(b)
			circ.batch[i] = nil
		}
		circ.batch = circ.batch[:0]
	}()
	for _, data := range datas {
		n, ok := circ.c.cfg.Sizes.For(cell.MsgHeaderLen+len(data), hop)
		if !ok {
			return 0, fmt.Errorf("client: %d-byte datagram is larger than a cell carries (%d)", len(data), circ.MaxData())
		}
		msg := pool.Get()[:cell.HeaderLen+n]
		circ.batch = append(circ.batch, msg)
		body := msg[cell.HeaderLen:]
		cell.PutHeader(msg, cell.Header{Circuit: circ.id, Command: cell.Relay})
		if err := cell.PutMsg(body[:onion.PayloadLen(n, hop)], cell.MsgData, data); err != nil {
			return 0, err
		}
		if err := circ.layers.Wrap(body, hop); err != nil {
			return 0, err
		}
	}
	sent, err := circ.link.SendBatch(circ.batch)
	circ.c.out.Add(uint64(sent))
	if sent > 0 {
		circ.sent()
	}
	return sent, err
}

// MaxData returns the largest datagram Send carries.
func (circ *Circuit) MaxData() int {
	return cell.MaxData(onion.PayloadLen(circ.c.cfg.Sizes[len(circ.c.cfg.Sizes)-1], len(circ.path)))
}

// Path returns the circuit's relays, guard first.
func (circ *Circuit) Path() []netdir.Relay { return circ.path }

// Done is closed when the circuit is torn down.
func (circ *Circuit) Done() <-chan struct{} { return circ.done }

// Err returns why the circuit was torn down, or nil while it is open.
func (circ *Circuit) Err() error {
	if e := circ.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Close tears the circuit down and tells the relays.
func (circ *Circuit) Close() { circ.close(&cell.Error{Reason: cell.ReasonRequested}, true) }

func (circ *Circuit) close(err error, sendDestroy bool) {
	circ.once.Do(func() {
		circ.err.Store(&err)
		close(circ.done)
		circ.c.unregister(circ)
		if sendDestroy {
			reason := cell.ReasonRequested
			var ce *cell.Error
			if errors.As(err, &ce) {
				reason = ce.Reason
			}
			buf := pool.Get()
			msg := buf[:cell.HeaderLen+circ.c.cfg.Sizes[0]]
			cell.PutHeader(msg, cell.Header{Circuit: circ.id, Command: cell.Destroy})
			cell.EncodeDestroy(msg[cell.HeaderLen:], reason)
			_ = circ.link.Send(msg)
			pool.Put(buf)
		}
	})
}

// receive opens a backward RELAY cell and acts on the message inside.
func (circ *Circuit) receive(body []byte) {
	circ.bwdMu.Lock()
	defer circ.bwdMu.Unlock()
	hop, payload, err := circ.layers.Unwrap(body, circ.scr[:len(body)])
	if err != nil {
		switch {
		case errors.Is(err, onion.ErrAuth):
			circ.c.badMAC.Add(1)
			circ.close(&cell.Error{Reason: cell.ReasonAuth}, true)
		case errors.Is(err, onion.ErrReplay):
			circ.c.replay.Add(1)
		default:
			circ.c.other.Add(1)
		}
		return
	}
	circ.countGaps()
	if hop == len(circ.path) && circ.unanswered.Load() != 0 {
		circ.unanswered.Store(0) // a cell came back from the last hop: the circuit carries both ways
	}
	t, data, err := cell.ParseMsg(payload)
	if err != nil {
		circ.c.other.Add(1)
		return
	}
	switch t {
	case cell.MsgData:
		if hop == len(circ.path) && circ.c.cfg.OnData != nil {
			circ.c.cfg.OnData(circ, data)
		}
	case cell.MsgProbeReply:
		circ.deliverEcho(hop, data)
	case cell.MsgExtended:
		circ.deliverStep(answer{answerExtended, hop}, stepResult{reply: data})
	case cell.MsgBegun:
		circ.deliverStep(answer{answerBegun, hop}, stepResult{reply: data})
	case cell.MsgExtendFailed:
		reason := cell.ReasonUnreachable
		if len(data) > 0 {
			reason = cell.DestroyReason(data[0])
		}
		circ.deliverStep(answer{answerExtended, hop}, stepResult{failed: &cell.Error{Reason: reason, Remote: true}})
	default:
		// EXTEND and BEGIN travel only towards the exit: a hop that sends one back breaks the protocol.
		// MsgDrop is padding, discarded.
		if t != cell.MsgDrop {
			circ.c.violations.Add(1)
		}
	}
}
