package clientd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
)

// unreachable turns a request to the control socket that got no answer into an error for the
// person at the terminal, in words that name the socket and what to do, not the HTTP client's and the
// dialer's (`Post "http://meshvpn/v1/down": dial unix …`): no socket, or one nothing answers at, is
// ErrNotRunning; a socket the user may not use, or a daemon that does not answer, is not.
func (c *Control) unreachable(err error) error {
	var timeout interface{ Timeout() bool }
	var errno syscall.Errno
	var op *net.OpError
	dialing := errors.As(err, &op) && op.Op == "dial" // else the socket took the connection
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &plainError{fmt.Sprintf("%v (no control socket at %s)", ErrNotRunning, c.path), ErrNotRunning}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &plainError{fmt.Sprintf("%v (nothing answers at its control socket %s: a daemon that died left it)", ErrNotRunning, c.path), ErrNotRunning}
	case errors.Is(err, fs.ErrPermission):
		return &plainError{fmt.Sprintf("the daemon's control socket %s is only root's: run this as root (sudo)", c.path), err}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout():
		return &plainError{fmt.Sprintf("the daemon does not answer at its control socket %s (busy, or stuck: its log may say why)", c.path), err}
	case !dialing: // EOF, a reset, net/http's "server closed idle connection"
		return &plainError{fmt.Sprintf("the daemon hung up without an answer at its control socket %s (did it just stop?)", c.path), err}
	case errors.As(err, &errno):
		return &plainError{fmt.Sprintf("%v (control socket %s: %v)", ErrNotRunning, c.path, errno), ErrNotRunning}
	}
	return &plainError{fmt.Sprintf("the daemon's control socket %s: %v", c.path, innermost(err)), err}
}

// plainError is an error whose text is written for people, which still answers errors.Is and As
// for the error it stands for.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }

// innermost is the last error in err's chain: the cause without the layers that name Go's calls.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
