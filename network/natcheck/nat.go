// Package natcheck finds out how the world sees a node's UDP socket: its public address and port, and the
// kind of mapping the NATs on the way make (RFC 4787): none (the socket is public), endpoint-
// independent (one public port for every destination: hole punching works), or address/port-
// dependent ("symmetric": a new port per destination: punching fails, links need a relay). It asks
// two or more STUN servers (the dht-bootstrap nodes') over the node's own data-plane socket, so the
// answer holds for that socket's links, and reports a plain value.
package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/network/stun"
)

// Mapping is the kind of NAT mapping a socket is behind.
type Mapping uint8

// The mappings Detect tells apart.
const (
	Unknown             Mapping = iota // fewer than two servers answered, and the address is not our own
	None                               // the socket's own address is what the servers see: no NAT
	EndpointIndependent                // one public address and port for every destination
	Dependent                          // a different public port (or address) per destination: symmetric
)

func (m Mapping) String() string {
	return [...]string{"unknown", "none", "endpoint-independent", "address/port-dependent"}[m]
}

// Report is what Detect found.
type Report struct {
	Local   netip.AddrPort   // the socket's own address
	Public  netip.AddrPort   // what the first server that answered saw
	Seen    []netip.AddrPort // what each answering server saw, in the order of Servers
	Servers []netip.AddrPort // the servers that answered
	Mapping Mapping
	RTT     time.Duration // to the first server that answered
}

// Classify decides the mapping from the socket's local address and what the servers saw.
func Classify(local netip.AddrPort, seen []netip.AddrPort) Mapping {
	if len(seen) == 0 {
		return Unknown
	}
	for _, s := range seen {
		if s != seen[0] {
			return Dependent
		}
	}
	if seen[0] == local {
		return None
	}
	if len(seen) < 2 {
		return Unknown
	}
	return EndpointIndependent
}

// Prober sends STUN Binding requests through a socket that carries other traffic too, and takes the
// answers from that socket's reader (Handle).
type Prober struct {
	send func(pkt []byte, to netip.AddrPort) error

	mu      sync.Mutex
	pending map[[12]byte]chan netip.AddrPort
}

// NewProber returns a prober that sends with send (link.Node.WriteTo for the data-plane socket).
func NewProber(send func(pkt []byte, to netip.AddrPort) error) *Prober {
	return &Prober{send: send, pending: make(map[[12]byte]chan netip.AddrPort)}
}

// Handle takes a datagram from the socket's reader and reports whether it was a STUN answer to one of
// the prober's requests (register it with link.Node.HandleOther before the node starts).
func (p *Prober) Handle(pkt []byte, from netip.AddrPort) bool {
	if !stun.IsMessage(pkt) || len(pkt) < 20 {
		return false
	}
	var id [12]byte
	copy(id[:], pkt[8:20])
	p.mu.Lock()
	ch, ok := p.pending[id]
	p.mu.Unlock()
	if !ok {
		return false
	}
	mapped, err := stun.ParseResponse(pkt, id)
	if err != nil {
		return false
	}
	select {
	case ch <- mapped:
	default:
	}
	return true
}

// ask sends one Binding request to server, resending it every resend, and waits for the answer.
func (p *Prober) ask(ctx context.Context, server netip.AddrPort, resend time.Duration) (netip.AddrPort, time.Duration, error) {
	req, id, err := stun.Request()
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	ch := make(chan netip.AddrPort, 1)
	p.mu.Lock()
	p.pending[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}()
	start := time.Now()
	t := time.NewTicker(resend)
	defer t.Stop()
	for {
		if err := p.send(req, server); err != nil {
			return netip.AddrPort{}, 0, err
		}
		select {
		case m := <-ch:
			return m, time.Since(start), nil
		case <-ctx.Done():
			return netip.AddrPort{}, 0, fmt.Errorf("stun %v: %w", server, ctx.Err())
		case <-t.C:
		}
	}
}

// Detect asks every server (at once) what address it sees, for at most the context's time, and
// classifies the mapping. local is the socket's own address.
func (p *Prober) Detect(ctx context.Context, local netip.AddrPort, servers []netip.AddrPort) (Report, error) {
	if len(servers) == 0 {
		return Report{}, errors.New("nat: no STUN server")
	}
	type answer struct {
		seen netip.AddrPort
		rtt  time.Duration
		err  error
	}
	answers := make([]answer, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			a := &answers[i]
			a.seen, a.rtt, a.err = p.ask(ctx, s, 300*time.Millisecond)
		})
	}
	wg.Wait()
	r := Report{Local: local}
	var errs []error
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		if len(r.Seen) == 0 {
			r.Public, r.RTT = a.seen, a.rtt
		}
		r.Seen = append(r.Seen, a.seen)
		r.Servers = append(r.Servers, servers[i])
	}
	if len(r.Seen) == 0 {
		return r, fmt.Errorf("nat: no STUN server answered: %w", errors.Join(errs...))
	}
	// A socket bound to a wildcard address does not know which of the host's addresses it sends from:
	// if the servers saw one of them, with our port, that is the local address.
	if local.Addr().IsUnspecified() && r.Public.Port() == local.Port() && isOwnAddr(r.Public.Addr()) {
		r.Local = netip.AddrPortFrom(r.Public.Addr(), local.Port())
	}
	r.Mapping = Classify(r.Local, r.Seen)
	return r, nil
}

// isOwnAddr reports whether a is an address of one of this host's interfaces.
func isOwnAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}
