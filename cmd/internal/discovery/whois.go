package discovery

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
	nonce  [whois.NonceLen]byte
	answer chan whoisAnswer // buffered: the reader never blocks
}

type whoisAnswer struct {
	network [32]byte
	id      keys.IdentityPublic
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
	buf := make([]byte, 512)
	for {
		n, from, err := w.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n != whois.ResponseLen || !whois.IsWhois(buf[:n]) {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		w.mu.Lock()
		for _, q := range w.waiting[from] {
			if net, id, err := whois.ParseAnswer(buf[:n], q.nonce); err == nil {
				select {
				case q.answer <- whoisAnswer{net, id}:
				default:
				}
				break
			}
		}
		w.mu.Unlock()
	}
}

// ask asks the relay at addr which identity it is, and waits up to timeout for the answer. The
// question is sent twice (at once and halfway), since one datagram may be lost.
func (w *whoisAsker) ask(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (whoisAnswer, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	q := &question{answer: make(chan whoisAnswer, 1)}
	if _, err := rand.Read(q.nonce[:]); err != nil {
		return whoisAnswer{}, err
	}
	w.mu.Lock()
	w.waiting[addr] = append(w.waiting[addr], q)
	w.mu.Unlock()
	defer w.forget(addr, q)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := whois.Request(q.nonce)
	if _, err := w.conn.WriteToUDPAddrPort(req, addr); err != nil {
		return whoisAnswer{}, fmt.Errorf("whois %s: %w", addr, err)
	}
	again := time.NewTimer(timeout / 2)
	defer again.Stop()
	for {
		select {
		case a := <-q.answer:
			return a, nil
		case <-again.C:
			_, _ = w.conn.WriteToUDPAddrPort(req, addr)
		case <-ctx.Done():
			return whoisAnswer{}, fmt.Errorf("whois %s: %w", addr, errNoAnswer)
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
