package dht

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"go.uber.org/zap"
)

// guardConn is the socket as the library sees it. It drops datagrams that checkPacket rejects, counts
// traffic, and never hands the library a read error before Close: the library panics on any read
// error it did not cause by closing the server itself.
type guardConn struct {
	net.PacketConn
	log        *zap.Logger
	responders *responders

	packetsIn  atomic.Uint64
	packetsOut atomic.Uint64
	dropped    atomic.Uint64

	// handing is held by the library's reader from the moment ReadFrom hands it a datagram until
	// it comes back for the next, so that stopHanding can wait for the library to be done with it.
	handing  sync.Mutex
	holding  bool // the reader holds handing; touched by the reader only
	stopping bool // guarded by handing: hand the library nothing more

	closeOnce  sync.Once
	closed     chan struct{} // closed by Close, before the socket is
	readerOnce sync.Once
	readerDone chan struct{} // closed when a read returns after Close
}

func newGuardConn(pc net.PacketConn, log *zap.Logger, rs *responders) *guardConn {
	return &guardConn{
		PacketConn: pc,
		log:        log,
		responders: rs,
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}

// ReadFrom returns the next datagram that is safe for the library.
func (c *guardConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.holding {
		c.holding = false
		c.handing.Unlock()
	}
	backoff := time.Millisecond
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			if c.isClosed() {
				c.readerOnce.Do(func() { close(c.readerDone) })
				return 0, nil, err
			}
			if errors.Is(err, net.ErrClosed) {
				// Someone closed the socket under us. Park the library's reader until Close rather
				// than let it panic; every send now fails, which the node's callers see.
				c.log.Error("dht socket closed outside Node.Close", zap.Error(err))
				<-c.closed
				continue
			}
			c.log.Warn("dht socket read", zap.Error(err))
			select {
			case <-time.After(backoff):
			case <-c.closed:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = time.Millisecond
		c.packetsIn.Add(1)
		y, err := checkPacket(b[:n])
		if err != nil {
			c.dropped.Add(1)
			if ce := c.log.Check(zap.DebugLevel, "dropped datagram"); ce != nil {
				ce.Write(zap.Stringer("from", addr), zap.Error(err))
			}
			continue
		}
		if y == krpc.YResponse {
			c.responders.answered(addr)
		}
		c.handing.Lock()
		if c.stopping {
			c.handing.Unlock()
			continue
		}
		c.holding = true
		return n, addr, nil
	}
}

// stopHanding makes ReadFrom hand the library no more datagrams, and returns once the library is
// done with the last one. The library's reader ends on its own if it finds the server closed after
// a read, without reading again; with nothing handed to it after the server closes, it always comes
// back to ReadFrom, and sees the socket closed.
func (c *guardConn) stopHanding() {
	c.handing.Lock()
	c.stopping = true
	c.handing.Unlock()
}

// WriteTo sends one datagram.
func (c *guardConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.packetsOut.Add(1)
	if isQuery(b) {
		c.responders.asked(addr)
	}
	return c.PacketConn.WriteTo(b, addr)
}

// Close closes the socket once; the library calls it too.
func (c *guardConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.PacketConn.Close()
	})
	return err
}

// isQuery tells the library's outgoing queries from its replies: it marshals messages with sorted
// keys, and "y" sorts last.
func isQuery(b []byte) bool { return bytes.HasSuffix(b, []byte("1:y1:qe")) }

func (c *guardConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}
