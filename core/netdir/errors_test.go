package netdir

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/core/directory"
)

// TestNoConsensusSaysWhy: when every authority answered but their documents make no consensus (here:
// all expired), the error says so once, with no formatted nil error ("(<nil>)", "%!w(<nil>)") where
// the list of what went wrong on the way would be.
func TestNoConsensusSaysWhy(t *testing.T) {
	n := newTestNet(t, 4)
	f, err := NewFetcher(n.g, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(context.Background(), now.Add(30*24*time.Hour))
	if !errors.Is(err, directory.ErrNoConsensus) {
		t.Fatalf("expired documents: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "nil>") || strings.Contains(msg, "%!") || strings.Count(msg, "no consensus") > 1 {
		t.Fatalf("the error reads %q", msg)
	}
	// With an authority down, what went wrong with it is in the error, and errors.Is still finds it.
	n.auths[0].srv.Close()
	_, err = f.Fetch(context.Background(), now.Add(30*24*time.Hour))
	if !errors.Is(err, directory.ErrNoConsensus) || !strings.Contains(err.Error(), "authority ") || strings.Contains(err.Error(), "nil>") {
		t.Fatalf("with one authority down: %v", err)
	}
}
