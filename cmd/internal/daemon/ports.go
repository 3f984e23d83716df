package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Socket is an address a daemon listens at, as its configuration sets it: Key is the setting in the
// configuration file (dht.listen), whose flag is the key with '.' and '_' made '-' (--dht-listen);
// Net is "udp" or "tcp".
type Socket struct {
	Key, Net, Addr string
}

// Flag is the command-line flag that sets the socket's address.
func (s Socket) Flag() string {
	return "--" + strings.NewReplacer(".", "-", "_", "-").Replace(s.Key)
}

// PortTakenError is a socket of the configuration that could not be bound because another program
// (often another MeshVPN daemon on the same host, at its default port) holds the port.
type PortTakenError struct {
	Socket
	Err error
}

func (e *PortTakenError) Error() string {
	port := e.Addr
	if _, p, err := net.SplitHostPort(e.Addr); err == nil {
		port = p
	}
	return fmt.Sprintf("%s %s: %s port %s is taken by another program (another MeshVPN daemon on this host?): "+
		"set %s in the configuration file, or %s, to a free port (docs/operators.md, \"Ports\")",
		e.Key, e.Addr, strings.ToUpper(e.Net), port, e.Key, e.Flag())
}

func (e *PortTakenError) Unwrap() error { return e.Err }

// ExplainPortTaken returns err as it is, unless it is a failure to bind a port that is in use: then
// it returns a *PortTakenError naming the socket of sockets with that port, or, when none has it,
// err with the same advice.
func ExplainPortTaken(err error, sockets ...Socket) error {
	var op *net.OpError
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &op) || op.Addr == nil {
		return err
	}
	var taken netip.AddrPort
	switch a := op.Addr.(type) {
	case *net.UDPAddr:
		taken = a.AddrPort()
	case *net.TCPAddr:
		taken = a.AddrPort()
	}
	for _, s := range sockets {
		if !strings.HasPrefix(op.Net, s.Net) {
			continue
		}
		if _, p, perr := net.SplitHostPort(s.Addr); perr == nil && p == fmt.Sprint(taken.Port()) && taken.Port() != 0 {
			return &PortTakenError{Socket: s, Err: err}
		}
	}
	return fmt.Errorf("%w: the port is taken by another program (another MeshVPN daemon on this host?); docs/operators.md, \"Ports\", lists the defaults", err)
}
