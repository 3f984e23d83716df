package dns

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/exit/nat"
)

// Addr is the tunnel resolver's address: the first address of the client's default tunnel network
// 10.99.0.0/24, whose second the client's TUN takes. It is private, so no exit forwards to it (exit
// policy), and the same at every exit, so a client needs to be told nothing (docs/protocol.md).
var Addr = netip.MustParseAddr("10.99.0.1")

// Port is the tunnel resolver's port.
const Port = 53

// MaxAnswer is the largest DNS answer sent back through the tunnel: the DNS flag day's 1232-byte
// EDNS buffer, which with its IPv4 and UDP headers fits the tunnel's MTU (docs/protocol.md §4). A
// client that offers less gets no more than it offers (512 without EDNS); a longer answer is
// truncated (TC set).
const MaxAnswer = 1232

// Config configures a Resolver. Zero values take defaults.
type Config struct {
	// Upstream answers the resolver's questions (default: a HostResolver on /etc/resolv.conf).
	Upstream Upstream
	// Search lists the exit host's own domains, whose names are answered NXDOMAIN here (default: the
	// HostResolver's search domains).
	Search func() []string
	// MaxInFlight bounds the questions being asked at once (default 256), MaxPerSession those of one
	// session (default 32). A query past either is dropped and counted; the client asks again.
	MaxInFlight, MaxPerSession int
	// Timeout bounds one query, every upstream tried (default 5 s); then the client gets SERVFAIL.
	Timeout time.Duration
	Logger  *zap.Logger
}

// Stats counts what the resolver did with the queries it was given.
type Stats struct {
	Queries  uint64 // UDP queries to Addr:Port that reached the resolver
	Answered uint64 // answers from the exit host's resolver sent back
	Local    uint64 // private and local names answered NXDOMAIN without asking anyone
	Refused  uint64 // queries answered REFUSED, NOTIMP or FORMERR (zone transfers, other classes, opcodes)
	ServFail uint64 // queries the exit host's resolver did not answer in time: SERVFAIL sent
	// Malformed counts queries dropped unanswered: not a DNS query (unparsable, a response, a UDP
	// header that does not hold together, a fragment).
	Malformed uint64
	TooBig    uint64 // queries longer than MaxQuery, dropped
	Busy      uint64 // queries dropped because too many were in flight (in all or for the session)
	TCP       uint64 // TCP connections to the resolver, refused with ICMP port unreachable
}

// Resolver answers a exit's clients' queries to Addr. Its methods may be called concurrently.
type Resolver struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	total   int
	perSess map[uint64]int
	closed  bool

	queries, answered, local, refused, servFail atomic.Uint64
	malformed, tooBig, busy, tcp                atomic.Uint64
}

// New returns a Resolver.
func New(cfg Config) *Resolver {
	if cfg.Upstream == nil {
		cfg.Upstream = &HostResolver{}
	}
	if cfg.Search == nil {
		if h, ok := cfg.Upstream.(*HostResolver); ok {
			cfg.Search = h.Search
		} else {
			cfg.Search = func() []string { return nil }
		}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.MaxPerSession <= 0 {
		cfg.MaxPerSession = 32
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &Resolver{cfg: cfg, perSess: make(map[uint64]int)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close abandons the questions in flight and waits for their goroutines; later queries are dropped.
func (r *Resolver) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Stats returns the resolver's counters.
func (r *Resolver) Stats() Stats {
	return Stats{
		Queries: r.queries.Load(), Answered: r.answered.Load(), Local: r.local.Load(), Refused: r.refused.Load(),
		ServFail: r.servFail.Load(), Malformed: r.malformed.Load(), TooBig: r.tooBig.Load(), Busy: r.busy.Load(),
		TCP: r.tcp.Load(),
	}
}

// For reports whether a packet with header h is for the tunnel resolver: TCP or UDP to Addr:Port.
func For(h nat.Header) bool {
	return h.Dst == Addr && h.DstPort == Port && !h.Fragment &&
		(h.Proto == protoUDP || h.Proto == protoTCP)
}

const (
	protoTCP = 6
	protoUDP = 17
)

// Handle takes a packet for the tunnel resolver (For(h) holds; h is ParseIPv4's header of pkt) from
// session, and answers it through reply, at once or later from another goroutine. It does not keep
// pkt. A TCP connection is refused with an ICMP port unreachable, so the client's stub fails over at
// once: answers come over UDP, truncated (TC) past what the client offers.
func (r *Resolver) Handle(session uint64, h nat.Header, pkt []byte, reply func([]byte)) {
	if h.Proto == protoTCP {
		r.tcp.Add(1)
		if icmp, err := nat.ICMPUnreachable(nil, pkt, Addr, nat.CodePortUnreachable); err == nil {
			reply(icmp)
		}
		return
	}
	r.queries.Add(1)
	udp := pkt[h.HeaderLen:h.TotalLen]
	n := int(udp[4])<<8 | int(udp[5])
	if h.Fragment || n < 8 || n > len(udp) || h.SrcPort == 0 {
		r.malformed.Add(1)
		return
	}
	payload := udp[8:n]
	if len(payload) > MaxQuery {
		r.tooBig.Add(1)
		return
	}
	q := new(dns.Msg)
	if err := q.Unpack(payload); err != nil || q.Response {
		r.malformed.Add(1) // never answer an answer: two resolvers would feed each other
		return
	}
	client := netip.AddrPortFrom(h.Src, h.SrcPort)
	switch judge(q, r.cfg.Search()) {
	case local:
		r.send(client, q, r.rcode(q, dns.RcodeNameError), reply, &r.local)
		return
	case refuse:
		r.send(client, q, r.rcode(q, dns.RcodeRefused), reply, &r.refused)
		return
	case notImpl:
		r.send(client, q, r.rcode(q, dns.RcodeNotImplemented), reply, &r.refused)
		return
	case formErr:
		r.send(client, q, r.rcode(q, dns.RcodeFormatError), reply, &r.refused)
		return
	}
	if !r.acquire(session) {
		r.busy.Add(1)
		return
	}
	r.wg.Go(func() {
		defer r.release(session)
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
		defer cancel()
		a, err := r.ask(ctx, q)
		if err != nil {
			if r.ctx.Err() != nil {
				return // closing
			}
			r.cfg.Logger.Debug("the exit's resolver did not answer", zap.Error(err))
			r.send(client, q, r.rcode(q, dns.RcodeServerFailure), reply, &r.servFail)
			return
		}
		r.send(client, q, a, reply, &r.answered)
	})
}

func (r *Resolver) acquire(session uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.total >= r.cfg.MaxInFlight || r.perSess[session] >= r.cfg.MaxPerSession {
		return false
	}
	r.total++
	r.perSess[session]++
	return true
}

func (r *Resolver) release(session uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total--
	if r.perSess[session]--; r.perSess[session] <= 0 {
		delete(r.perSess, session)
	}
}

// inFlight returns how many questions are being asked.
func (r *Resolver) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

var errMismatch = errors.New("the answer is to another question")

// ask asks the client's question afresh: a new id, recursion desired, the client's DNSSEC bits (DO,
// CD, AD) and none of its EDNS options.
func (r *Resolver) ask(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = true
	m.CheckingDisabled = q.CheckingDisabled
	m.AuthenticatedData = q.AuthenticatedData
	m.Question = []dns.Question{q.Question[0]}
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	m.SetEdns0(MaxAnswer, do)
	a, err := r.cfg.Upstream.Exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	if a == nil || !a.Response || a.Id != m.Id || len(a.Question) != 1 ||
		!strings.EqualFold(a.Question[0].Name, m.Question[0].Name) ||
		a.Question[0].Qtype != m.Question[0].Qtype || a.Question[0].Qclass != m.Question[0].Qclass {
		return nil, errMismatch
	}
	return a, nil
}

// rcode returns an answer to q with only a response code.
func (r *Resolver) rcode(q *dns.Msg, code int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, code)
	m.RecursionAvailable = true
	return m
}

// send fits answer a to client's query q (its id, question as asked, EDNS only if q had it, no larger
// than q may take) and writes it back as a packet from Addr, counted in count before it goes (one that
// cannot be packed counts as a SERVFAIL instead, and is not sent).
func (r *Resolver) send(client netip.AddrPort, q, a *dns.Msg, reply func([]byte), count *atomic.Uint64) {
	a.Id = q.Id
	a.Response = true
	a.Opcode = q.Opcode
	a.RecursionDesired = q.RecursionDesired
	if len(q.Question) > 0 {
		a.Question = q.Question[:1] // as the client spelled it (0x20 case randomisation)
	} else {
		a.Question = nil
	}
	// The exit's resolver's OPT was for the exit's question; the client gets one of ours if it sent one.
	extra := a.Extra[:0]
	for _, rr := range a.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	a.Extra = extra
	limit := dns.MinMsgSize
	if opt := q.IsEdns0(); opt != nil {
		limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), MaxAnswer)
		a.SetEdns0(uint16(limit), opt.Do())
	}
	a.Compress = true
	a.Truncate(limit)
	wire, err := a.Pack()
	if err != nil || len(wire) > limit {
		r.cfg.Logger.Debug("tunnel resolver: an answer could not be packed", zap.Error(err))
		r.servFail.Add(1)
		return
	}
	pkt, err := nat.UDPv4(make([]byte, 0, 28+len(wire)), netip.AddrPortFrom(Addr, Port), client, wire)
	if err != nil {
		r.servFail.Add(1)
		return
	}
	count.Add(1)
	reply(pkt)
}
