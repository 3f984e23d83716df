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

// pathError is a failure of one kind with a message that says which constraint was not met.
type pathError struct {
	kind error
	msg  string
}

func (e *pathError) Error() string { return "path: " + e.msg }
func (e *pathError) Unwrap() error { return e.kind }

func fail(kind error, format string, args ...any) error {
	return &pathError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
