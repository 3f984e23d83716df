package authority

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// errNoAnswer is a whois question that got no answer in time.
var errNoAnswer = errors.New("no whois answer")

// whoisAsker asks relays which identity they are, over a UDP socket of its own. One goroutine reads
// the answers and hands each to the question waiting for it (same source address, same nonce).
type whoisAsker struct {
	conn *net.UDPConn
	done chan struct{}

	mu      sync.Mutex
	waiting map[netip.AddrPort][]*question
}

type question struct {
	nonce [whois.NonceLen]byte
	// parse accepts the answer meant for this question; the answer goes to answer (buffered: the
	// reader never blocks).
	parse  func(b []byte, nonce [whois.NonceLen]byte) (any, error)
	answer chan any
}

type whoisAnswer struct {
	network [32]byte
	id      keys.IdentityPublic
}

// registeredPage is one page of a rendezvous's list of registered relays.
type registeredPage struct {
	pages int
	regs  []whois.Registration
}

func newWhoisAsker(conn *net.UDPConn) *whoisAsker {
	w := &whoisAsker{conn: conn, done: make(chan struct{}), waiting: make(map[netip.AddrPort][]*question)}
	go w.read()
	return w
}

// Close closes the socket and waits for the reader.
func (w *whoisAsker) Close() error {
	err := w.conn.Close()
	<-w.done
	return err
}

func (w *whoisAsker) read() {
	defer close(w.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := w.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !whois.IsWhois(buf[:n]) {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		w.mu.Lock()
		for _, q := range w.waiting[from] {
			if a, err := q.parse(buf[:n], q.nonce); err == nil {
				select {
				case q.answer <- a:
				default:
				}
				break
			}
		}
		w.mu.Unlock()
	}
}

// ask asks the relay at addr which identity it is, and waits up to timeout for the answer.
func (w *whoisAsker) ask(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (whoisAnswer, error) {
	a, err := w.exchange(ctx, addr, timeout, whois.Request, func(b []byte, nonce [whois.NonceLen]byte) (any, error) {
		net, id, err := whois.ParseAnswer(b, nonce)
		return whoisAnswer{net, id}, err
	})
	if err != nil {
		return whoisAnswer{}, err
	}
	return a.(whoisAnswer), nil
}

// askRegistered asks the relay at addr, a rendezvous, which relays are registered with it: every page
// of its list, each within timeout.
func (w *whoisAsker) askRegistered(ctx context.Context, addr netip.AddrPort, timeout time.Duration) ([]whois.Registration, error) {
	var all []whois.Registration
	for page, pages := 0, 1; page < pages; page++ {
		a, err := w.exchange(ctx, addr, timeout,
			func(nonce [whois.NonceLen]byte) []byte { return whois.RegisteredRequest(nonce, page) },
			func(b []byte, nonce [whois.NonceLen]byte) (any, error) {
				got, n, regs, err := whois.ParseRegistered(b, nonce)
				if err == nil && got != page {
					err = fmt.Errorf("page %d for page %d", got, page)
				}
				return registeredPage{n, regs}, err
			})
		if err != nil {
			return all, err
		}
		p := a.(registeredPage)
		pages = p.pages
		all = append(all, p.regs...)
	}
	return all, nil
}

// exchange sends the request req makes to addr and waits up to timeout for an answer parse accepts.
// The request is sent twice (at once and halfway), since one datagram may be lost.
func (w *whoisAsker) exchange(ctx context.Context, addr netip.AddrPort, timeout time.Duration, req func([whois.NonceLen]byte) []byte, parse func([]byte, [whois.NonceLen]byte) (any, error)) (any, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	q := &question{parse: parse, answer: make(chan any, 1)}
	if _, err := rand.Read(q.nonce[:]); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.waiting[addr] = append(w.waiting[addr], q)
	w.mu.Unlock()
	defer w.forget(addr, q)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg := req(q.nonce)
	if _, err := w.conn.WriteToUDPAddrPort(msg, addr); err != nil {
		return nil, fmt.Errorf("whois %s: %w", addr, err)
	}
	again := time.NewTimer(timeout / 2)
	defer again.Stop()
	for {
		select {
		case a := <-q.answer:
			return a, nil
		case <-again.C:
			_, _ = w.conn.WriteToUDPAddrPort(msg, addr)
		case <-ctx.Done():
			return nil, fmt.Errorf("whois %s: %w", addr, errNoAnswer)
		}
	}
}

func (w *whoisAsker) forget(addr netip.AddrPort, q *question) {
	w.mu.Lock()
	defer w.mu.Unlock()
	qs := w.waiting[addr]
	for i, x := range qs {
		if x == q {
			qs = append(qs[:i], qs[i+1:]...)
			break
		}
	}
	if len(qs) == 0 {
		delete(w.waiting, addr)
	} else {
		w.waiting[addr] = qs
	}
}

// listenUDP binds a socket at ap of ap's address family only, so that 0.0.0.0 means IPv4 and [::]
// IPv6 (the DHT node's socket, as every MeshVPN DHT node's).
func listenUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	network := "udp6"
	if ap.Addr().Is4() {
		network = "udp4"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
}

// listenSource binds a socket at ip with a port the kernel chooses, for whois questions and probe
// circuits. The IPv6 wildcard is dual-stack, so that a source of "::" reaches IPv4 relays too.
func listenSource(ip netip.Addr) (*net.UDPConn, error) {
	if ip.Is6() && ip.IsUnspecified() {
		return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	}
	return listenUDP(netip.AddrPortFrom(ip, 0))
}
