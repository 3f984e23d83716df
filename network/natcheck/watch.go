package natcheck

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultEvery is how often a Watch asks again: mappings change when a node moves between networks
// or its router restarts.
const DefaultEvery = 5 * time.Minute

// Watch runs Detect now and then and keeps the last answer, for a node's status and metrics.
type Watch struct {
	Prober  *Prober
	Servers []netip.AddrPort
	Local   func() netip.AddrPort // the socket's address
	Every   time.Duration         // default DefaultEvery
	Logger  *zap.Logger

	mu   sync.Mutex
	last *Report
	err  error
}

// Run detects at once and then every Every until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	every, log := w.Every, w.Logger
	if every == 0 {
		every = DefaultEvery
	}
	if log == nil {
		log = zap.NewNop()
	}
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := w.Prober.Detect(dctx, w.Local(), w.Servers)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.last = &r
		}
		w.err = err
		w.mu.Unlock()
		if err != nil {
			log.Info("NAT detection", zap.Error(err))
		} else {
			log.Info("NAT detection", zap.Stringer("mapping", r.Mapping))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Last returns the last report (nil before the first answer) and the last detection's error.
func (w *Watch) Last() (*Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.err
}
