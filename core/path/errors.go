package path

import (
	"errors"
	"fmt"
)

// The kinds of failure Pick reports; its errors match one of them with errors.Is.
var (
	ErrNoExit   = errors.New("path: no exit fits the choice")
	ErrNoGuard  = errors.New("path: no usable guard")
	ErrNoMiddle = errors.New("path: no usable middle")
)

// Causes that waiting does not cure, matched with errors.Is beside the kind.
var (
	// ErrNoSuchRelay: the relay a choice names is not in the consensus.
	ErrNoSuchRelay = errors.New("path: no such relay in the consensus")
	// ErrSameSubnet: a path would exist but for the rule that keeps two hops out of one /16 (a test
	// network on one machine needs AllowSameSubnet).
	ErrSameSubnet = errors.New("path: the relays share too few /16 networks")
)

// pathError is a failure of one kind (and perhaps a cause) with a message that says which constraint
// was not met.
type pathError struct {
	kind, cause error
	msg         string
}

func (e *pathError) Error() string { return "path: " + e.msg }
func (e *pathError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func fail(kind error, format string, args ...any) error {
	return &pathError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// because adds a cause to a pathError from fail.
func because(err, cause error) error {
	if pe, ok := err.(*pathError); ok {
		pe.cause = cause
	}
	return err
}
