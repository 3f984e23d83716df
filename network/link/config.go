package link

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/meshvpn/meshvpn/crypto/keys"
	"go.uber.org/zap"
)

// Defaults for the zero values of Config's durations and reader count.
const (
	// DefaultKeepaliveInterval is how long a link may go without sending before it sends a keepalive.
	// It is lowered to DeadAfter/3 when DeadAfter is set below 30 s, so that a peer always hears from
	// a live node several times before it would declare it dead.
	DefaultKeepaliveInterval = 10 * time.Second
	// DefaultDeadAfter is how long a link may go without receiving anything authenticated before it
	// is declared dead.
	DefaultDeadAfter = 30 * time.Second
	// DefaultRekeyAfter is the age at which a session's initiator replaces it (WireGuard's figure).
	DefaultRekeyAfter = 2 * time.Minute
	// DefaultHandshakeRetry is the interval between retransmissions of an unanswered initiation.
	DefaultHandshakeRetry = time.Second
	// DefaultReaders is the number of goroutines reading the socket.
	DefaultReaders = 1
	// DefaultSocketBuffer is the receive and send buffer Listen asks for on the socket. The kernel's
	// usual 208 KiB holds about 90 full datagrams: a relay that is busy for a millisecond on a shared
	// core overflows it, and every overflowed datagram is a lost packet of somebody's TCP flow
	// (measured on the testnet: 3–4% of a flow's datagrams at each relay). wireguard-go asks for 7 MiB.
	DefaultSocketBuffer = 4 << 20
)

// Limits that Validate enforces.
const (
	// MinInterval is the shortest duration Validate accepts for any timer, so that a typo cannot turn
	// the timer goroutine into a busy loop.
	MinInterval = 10 * time.Millisecond
	// MaxReaders bounds Config.Readers; more readers than cores only adds contention.
	MaxReaders = 256
)

// Config is what New and Listen need. Conn and Static are required, and OnMessage by Start (here or
// through SetHandlers); every other field has a default. The datagrams of the socket that are not
// link packets go to the handlers registered with HandleOther.
type Config struct {
	// Conn is the node's UDP socket, bound by the caller. The node owns it after Listen and closes it
	// on Close.
	Conn *net.UDPConn
	// Static is this node's link key: long-term for a relay, fresh per session for a client so that
	// its links cannot be tied to anything else it does.
	Static *keys.Static

	// OnMessage receives every non-empty message that arrives on any link, synchronously on a reading
	// goroutine. msg is valid only during the call: the buffer is reused for the next packet.
	OnMessage func(l *Link, msg []byte)
	// OnLinkDown, if set, is called once for each established link when it closes: with ErrDead when
	// the peer went silent, ErrClosed when it was closed locally (Link.Close or Node.Close). It runs on
	// the goroutine that closed the link (for a dead peer, the node's timer goroutine), so it must not
	// block, and must not call Node.Close; start a goroutine to redial.
	OnLinkDown func(l *Link, err error)
	// Accept, if set, is asked about every peer that completes the responder's side of a handshake,
	// before any state is kept for it; returning false refuses the link. It runs on the handshake
	// goroutine.
	Accept func(peer keys.StaticPublic) bool

	// Rendezvous, if set, makes this node a rendezvous for nodes behind NATs (rendezvous.go): it should
	// be reachable at a public address. Every node can dial through rendezvous and register with one
	// without it.
	Rendezvous *RendezvousConfig
	// Traversal tunes NAT traversal's timers; zero fields take the defaults.
	Traversal TraversalTimes

	// Readers is the number of goroutines reading the socket (zero means DefaultReaders).
	Readers int
	// SocketBuffer is the socket's receive and send buffer size in bytes (zero means
	// DefaultSocketBuffer, negative leaves the socket as it is). With CAP_NET_ADMIN the size is set
	// past the system's limit (net.core.rmem_max); without it the kernel caps it there.
	SocketBuffer int

	// KeepaliveInterval, DeadAfter, RekeyAfter and HandshakeRetry tune the link timers; zero means
	// the Default of the same name.
	KeepaliveInterval, DeadAfter, RekeyAfter, HandshakeRetry time.Duration

	// Logger receives debug events (links up and down, roaming, refused handshakes); nil means
	// zap.NewNop(). Nothing logged contains a key or a message.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Validate reports every problem with c at once, joined with errors.Join, or nil if New would
// accept it.
func (c Config) Validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("link: config: Conn is nil"))
	}
	if c.Static == nil {
		errs = append(errs, errors.New("link: config: Static is nil"))
	}
	if c.Readers < 0 || c.Readers > MaxReaders {
		errs = append(errs, fmt.Errorf("link: config: Readers is %d, want 0 (default) to %d", c.Readers, MaxReaders))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"KeepaliveInterval", c.KeepaliveInterval},
		{"DeadAfter", c.DeadAfter},
		{"RekeyAfter", c.RekeyAfter},
		{"HandshakeRetry", c.HandshakeRetry},
	} {
		if d.v != 0 && d.v < MinInterval {
			errs = append(errs, fmt.Errorf("link: config: %s is %v, want 0 (default) or at least %v", d.name, d.v, MinInterval))
		}
	}
	if d := c.withDefaults(); d.KeepaliveInterval >= d.DeadAfter {
		errs = append(errs, fmt.Errorf("link: config: KeepaliveInterval (%v) must be shorter than DeadAfter (%v), or a quiet link would die", d.KeepaliveInterval, d.DeadAfter))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Readers == 0 {
		c.Readers = DefaultReaders
	}
	if c.SocketBuffer == 0 {
		c.SocketBuffer = DefaultSocketBuffer
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = min(DefaultKeepaliveInterval, c.DeadAfter/3)
	}
	if c.RekeyAfter == 0 {
		c.RekeyAfter = DefaultRekeyAfter
	}
	if c.HandshakeRetry == 0 {
		c.HandshakeRetry = DefaultHandshakeRetry
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// derivedTimes are the timers that follow from the configured ones.
type derivedTimes struct {
	// rejectAfter is the age after which a session is used no more. The margin over RekeyAfter is
	// half of it (WireGuard's 120 s / 180 s) but at least three handshake retries, so a rekey that
	// loses a packet or two still lands before the old session stops.
	rejectAfter time.Duration
	// responderRekeyAfter is when a node rekeys a session it did not initiate: normally the initiator
	// does it at RekeyAfter, and this covers an initiator whose handshakes are all lost.
	responderRekeyAfter time.Duration
	// unconfirmedAfter is how long a responder keeps a session the initiator never used.
	unconfirmedAfter time.Duration
	// retireGrace is how long a replaced session still receives once its successor is confirmed,
	// for packets already in flight under it.
	retireGrace time.Duration
	// tick is the timer goroutine's period: fine enough to keep every timer within an eighth of its
	// interval, coarse enough to cost nothing on an idle node.
	tick time.Duration
}

func deriveTimes(c Config) derivedTimes {
	var d derivedTimes
	d.rejectAfter = c.RekeyAfter + max(c.RekeyAfter/2, 3*c.HandshakeRetry)
	d.responderRekeyAfter = c.RekeyAfter + c.HandshakeRetry
	d.unconfirmedAfter = c.DeadAfter
	d.retireGrace = min(3*time.Second, c.RekeyAfter)
	d.tick = min(c.KeepaliveInterval, c.DeadAfter, c.RekeyAfter, c.HandshakeRetry) / 8
	d.tick = max(5*time.Millisecond, min(d.tick, 250*time.Millisecond))
	return d
}
