package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Stack is what a daemon has started, in order: its Close stops it all in reverse order, so a daemon
// writes no chain of nil checks, and a Start that fails half way closes what it had started with the
// same call. It also owns the daemon's context: goroutines started with Go stop when it is cancelled,
// and Close waits for them before closing anything (the one rule for stopping things: the owner's
// context, never a stop channel beside it).
type Stack struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	items  []stackItem
	closed bool
	done   chan struct{} // closed when the first Close has stopped everything
	err    error         // its result, set before done is closed
}

type stackItem struct {
	name  string
	close func() error
}

// NewStack returns an empty stack whose context is a child of parent.
func NewStack(parent context.Context) *Stack {
	s := &Stack{done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(parent)
	return s
}

// Context is the daemon's context: cancelled when Close begins.
func (s *Stack) Context() context.Context { return s.ctx }

// Push adds a service's stop function, which Close calls after those pushed later. A nil close is
// ignored; after Close, close is called at once, so that nothing started late outlives the daemon.
func (s *Stack) Push(name string, close func() error) {
	if close == nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close()
		return
	}
	s.items = append(s.items, stackItem{name, close})
	s.mu.Unlock()
}

// Closer pushes c's Close.
func (s *Stack) Closer(name string, c io.Closer) { s.Push(name, c.Close) }

// Func pushes a stop function that cannot fail.
func (s *Stack) Func(name string, stop func()) {
	s.Push(name, func() error { stop(); return nil })
}

// Go runs f in a goroutine with the daemon's context; Close cancels it and waits for f to return
// before it stops any service.
func (s *Stack) Go(f func(ctx context.Context)) {
	s.wg.Go(func() { f(s.ctx) })
}

// Close cancels the context, waits for the goroutines of Go, then stops the services in reverse
// order, and returns their errors, each named. Later calls return the same.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return s.err
	}
	s.closed = true
	items := s.items
	s.items = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		if err := items[i].close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", items[i].name, err))
		}
	}
	s.err = errors.Join(errs...)
	close(s.done)
	return s.err
}
