package stun

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Server answers Binding requests on a UDP socket of its own.
type Server struct {
	conn *net.UDPConn
	log  *zap.Logger
	rate int // answers per second at most

	answered, unknown, refused, limited atomic.Uint64
	done                                chan struct{}
	once                                sync.Once
}

// ServerStats counts what a Server did.
type ServerStats struct {
	Answered uint64 // Binding requests answered
	Unknown  uint64 // Binding requests answered 420: they asked for what this server does not do
	Refused  uint64 // datagrams that were not Binding requests (no answer)
	Limited  uint64 // requests not answered because the server was over its rate
}

// DefaultRate bounds a server's answers per second: an answer is about as large as the request, so a
// STUN server is a poor amplifier, but it can still be used to reflect traffic at a victim.
const DefaultRate = 20_000

// Serve answers on conn until Close; rate ≤ 0 means DefaultRate. The server owns conn.
func Serve(conn *net.UDPConn, rate int, log *zap.Logger) *Server {
	if rate <= 0 {
		rate = DefaultRate
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{conn: conn, log: log, rate: rate, done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Server) run() {
	defer close(s.done)
	buf := make([]byte, 1500)
	window, inWindow := time.Now(), 0
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if now := time.Now(); now.Sub(window) >= time.Second {
			window, inWindow = now, 0
		}
		if inWindow >= s.rate {
			s.limited.Add(1)
			continue
		}
		resp, kind, err := answer(buf[:n], from)
		if err != nil {
			s.refused.Add(1)
			continue
		}
		inWindow++
		if _, err := s.conn.WriteToUDPAddrPort(resp, from); err == nil {
			if kind == unknownAttribute {
				s.unknown.Add(1)
			} else {
				s.answered.Add(1)
			}
		}
	}
}

// Addr returns the server's address.
func (s *Server) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Answered: s.answered.Load(), Unknown: s.unknown.Load(), Refused: s.refused.Load(), Limited: s.limited.Load()}
}

// Close stops the server and closes its socket.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.conn.Close()
		<-s.done
	})
	return err
}
