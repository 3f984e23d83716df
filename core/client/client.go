package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/link"
)

// Config configures a client. Zero values take defaults.
type Config struct {
	// Node is the client's link node, made by NewNode and not started: New sets its link handlers
	// (link.Node.SetHandlers; a client accepts no links), its owner registers whatever else shares
	// the socket (a STUN prober, link.Node.HandleOther) and then starts it (link.Node.Start). The
	// client owns it from New on and closes it on Close; if New fails, the caller still owns it.
	Node  *link.Node
	Sizes onion.Sizes // default onion.DefaultSizes
	Offer onion.SuiteSet

	// OnData receives every datagram the last hop of a circuit sends, synchronously on the reading
	// goroutine; data is valid only during the call.
	OnData func(c *Circuit, data []byte)

	StepTimeout time.Duration // how long one CREATE or EXTEND may take (default 3 s)
	Retries     int           // extra attempts of a whole build after a failure (default 2)

	// RatchetEvery is the layer-key ratchet's period: a circuit's forward key that has sealed something
	// is replaced by its next generation once it is this old (default 1 hour, onion.DefaultRatchetEvery;
	// design: keys replaced after 1 hour or 1 GB).
	RatchetEvery time.Duration

	Logger *zap.Logger
	Rand   io.Reader
}

// Stats is a snapshot of a client's counters.
type Stats struct {
	CircuitsBuilt, BuildFailures      uint64
	CellsIn, CellsOut                 uint64
	DropBadMAC, DropReplay, DropOther uint64
	DropUnknownCircuit                uint64
	// KeyRatchets counts forward layer keys replaced on schedule (Config.RatchetEvery), KeysErased the
	// backward generations erased a window after a hop's ratchet.
	KeyRatchets, KeysErased uint64
	// ProtocolViolations counts answers that no request was waiting for, or that came from a hop
	// other than the one asked (a hop trying to choose a handshake reply or an exit session for the
	// client); each tears its circuit down.
	ProtocolViolations uint64
	// CellGaps counts the holes in the counters of the last hop's layer on the cells that reached the
	// client: cells the exit sent that never arrived (Missing), lost on a link or dropped by a hop on
	// the way, which a colluding hop can use to mark a flow (docs/threat-model.md).
	CellGaps onion.Gaps
}

// Client builds and uses circuits. Its link key is fresh for each Client (Config.Node), so its links
// are not linkable to any other session.
type Client struct {
	cfg    Config
	node   *link.Node
	linkID keys.StaticPublic

	mu       sync.Mutex
	circuits map[endKey]*Circuit

	built, failed, in, out, badMAC, replay, other, unknown, violations atomic.Uint64

	ratchets, keysErased atomic.Uint64 // the scheduled layer-key ratchet's (ratchet.go)
	gapSkipped, gapLate  atomic.Uint64 // the last hops' backward layer gaps (gaps.go)

	stop     chan struct{} // ends the ratchet loop
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type endKey struct {
	l  *link.Link
	id cell.ID
}

// NewNode makes a client's link node on conn, not started, with lc's settings (timers, readers) and
// a link key that is fresh for each node, so that the client's links cannot be tied to anything else
// it does (lc.Conn and lc.Static are set here). The node owns conn; if NewNode fails, the caller does.
func NewNode(conn *net.UDPConn, lc link.Config) (*link.Node, error) {
	lk, err := keys.GenerateStatic(rand.Reader)
	if err != nil {
		return nil, err
	}
	lc.Conn, lc.Static = conn, lk
	node, err := link.New(lc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return node, nil
}

// New makes a client on cfg.Node, which its owner then starts (link.Node.Start).
func New(cfg Config) (*Client, error) {
	if cfg.Node == nil {
		return nil, errors.New("client: no link node")
	}
	if cfg.Sizes == nil {
		cfg.Sizes = onion.DefaultSizes
	}
	if err := cfg.Sizes.Validate(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.Offer == 0 {
		cfg.Offer = onion.DefaultOffer()
	}
	if cfg.StepTimeout == 0 {
		cfg.StepTimeout = 3 * time.Second
	}
	if cfg.RatchetEvery < 0 {
		return nil, errors.New("client: negative ratchet period")
	}
	if cfg.RatchetEvery == 0 {
		cfg.RatchetEvery = onion.DefaultRatchetEvery
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	c := &Client{cfg: cfg, node: cfg.Node, linkID: cfg.Node.Public(), circuits: make(map[endKey]*Circuit)}
	err := c.node.SetHandlers(link.Handlers{
		OnMessage:  c.onMessage,
		OnLinkDown: c.onLinkDown,
		Accept:     func(keys.StaticPublic) bool { return false }, // a client accepts no links
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.stop = make(chan struct{})
	c.wg.Add(1)
	go c.ratchetLoop()
	return c, nil
}

// Close tears down every circuit and stops the client.
func (c *Client) Close() error {
	c.mu.Lock()
	all := make([]*Circuit, 0, len(c.circuits))
	for _, circ := range c.circuits {
		all = append(all, circ)
	}
	c.mu.Unlock()
	for _, circ := range all {
		circ.Close()
	}
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
	return c.node.Close()
}

// LinkPath returns how the client's link to peer (a guard's link key) carries its packets: direct,
// punched through the peer's NAT, or relayed by its rendezvous. ok is false without a live link.
func (c *Client) LinkPath(peer keys.StaticPublic) (p link.Path, ok bool) {
	l := c.node.Link(peer)
	if l == nil {
		return link.Path{}, false
	}
	return l.Path(), true
}

// LocalAddr returns the address of the client's socket.
func (c *Client) LocalAddr() netip.AddrPort { return c.node.LocalAddr() }

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		CircuitsBuilt: c.built.Load(), BuildFailures: c.failed.Load(),
		CellsIn: c.in.Load(), CellsOut: c.out.Load(),
		DropBadMAC: c.badMAC.Load(), DropReplay: c.replay.Load(), DropOther: c.other.Load(),
		DropUnknownCircuit: c.unknown.Load(), ProtocolViolations: c.violations.Load(),
		KeyRatchets: c.ratchets.Load(), KeysErased: c.keysErased.Load(),
		CellGaps: onion.Gaps{Skipped: c.gapSkipped.Load(), Late: c.gapLate.Load()},
	}
}

// LinkStats returns a snapshot of the counters of the client's link layer: its socket's datagrams,
// handshakes, and the drops by reason of what arrived spoiled, replayed or unknown.
func (c *Client) LinkStats() link.Stats { return c.node.Stats() }

func (c *Client) lookup(l *link.Link, id cell.ID) *Circuit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.circuits[endKey{l, id}]
}

// register gives a new circuit an unused id on l.
func (c *Client) register(l *link.Link, circ *Circuit) {
	bit := cell.IDBit(c.linkID, l.Peer())
	c.mu.Lock()
	defer c.mu.Unlock()
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		id := cell.ID(binary.BigEndian.Uint32(b[:]))&^(1<<31) | bit
		if id&^(1<<31) == 0 {
			continue
		}
		if _, taken := c.circuits[endKey{l, id}]; !taken {
			circ.link, circ.id = l, id
			c.circuits[endKey{l, id}] = circ
			return
		}
	}
}

func (c *Client) unregister(circ *Circuit) {
	c.mu.Lock()
	if c.circuits[endKey{circ.link, circ.id}] == circ {
		delete(c.circuits, endKey{circ.link, circ.id})
	}
	c.mu.Unlock()
}

func (c *Client) onMessage(l *link.Link, msg []byte) {
	c.in.Add(1)
	h, body, err := cell.Parse(msg, c.cfg.Sizes)
	if err != nil {
		c.other.Add(1)
		return
	}
	circ := c.lookup(l, h.Circuit)
	if circ == nil {
		c.unknown.Add(1)
		return
	}
	switch h.Command {
	case cell.Created:
		reply, err := cell.DecodeCreated(body)
		if err != nil {
			c.other.Add(1)
			return
		}
		circ.deliverStep(answer{answerCreated, 1}, stepResult{reply: reply})
	case cell.Relay:
		circ.receive(body)
	case cell.Destroy:
		// A malformed DESTROY (an unknown reason, nonzero padding) still ends the circuit — the guard
		// has dropped it — but is counted: the reason byte must not carry anything else.
		reason, err := cell.DecodeDestroy(body)
		if err != nil {
			c.other.Add(1)
			reason = cell.ReasonProtocol
		}
		circ.close(&cell.Error{Reason: reason, Remote: true}, false)
	}
}

func (c *Client) onLinkDown(l *link.Link, err error) {
	c.mu.Lock()
	var dead []*Circuit
	for k, circ := range c.circuits {
		if k.l == l {
			dead = append(dead, circ)
		}
	}
	c.mu.Unlock()
	for _, circ := range dead {
		circ.close(&cell.Error{Reason: cell.ReasonLinkDown}, false)
	}
}

// Build makes a circuit through path (guard first, exit last), retrying with a fresh circuit after a
// failure while ctx allows.
func (c *Client) Build(ctx context.Context, path []netdir.Relay) (*Circuit, error) {
	if len(path) == 0 || len(path) > onion.MaxHops {
		return nil, fmt.Errorf("client: path of %d hops", len(path))
	}
	var err error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		var circ *Circuit
		circ, err = c.buildOnce(ctx, path)
		if err == nil {
			c.built.Add(1)
			return circ, nil
		}
		c.failed.Add(1)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("build circuit: %w", err)
}
