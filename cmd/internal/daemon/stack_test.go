package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The stack stops services in reverse order after its goroutines have returned, names the errors,
// and closes at once what is pushed after Close.
func TestStackStopsInReverse(t *testing.T) {
	s := NewStack(context.Background())
	var order []string
	s.Func("a", func() { order = append(order, "a") })
	s.Push("b", func() error { order = append(order, "b"); return errors.New("b failed") })
	s.Func("c", func() { order = append(order, "c") })
	s.Push("nil", nil)
	exited := make(chan struct{})
	s.Go(func(ctx context.Context) {
		<-ctx.Done()
		order = append(order, "goroutine")
		close(exited)
	})
	err := s.Close()
	if !slices.Equal(order, []string{"goroutine", "c", "b", "a"}) {
		t.Fatalf("stopped in order %v, want the goroutine first, then c, b, a", order)
	}
	if err == nil || !strings.Contains(err.Error(), "b: b failed") {
		t.Fatalf("Close: %v, want b's error named", err)
	}
	if again := s.Close(); again != err {
		t.Fatalf("second Close: %v, want the first's result", again)
	}
	late := false
	s.Func("late", func() { late = true })
	if !late {
		t.Fatal("a service pushed after Close was left running")
	}
	if s.Context().Err() == nil {
		t.Fatal("the context outlived Close")
	}
}
