package clientd

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/network/nat"
)

// natRefresh is how often the client asks the STUN servers again: mappings change when the user
// moves between networks.
const natRefresh = 5 * time.Minute

// natWatch runs NAT detection over the client's own socket against the genesis file's STUN servers.
type natWatch struct {
	prober  *nat.Prober
	servers []netip.AddrPort
	local   func() netip.AddrPort
	log     *zap.Logger

	mu   sync.Mutex
	last *nat.Report
	err  error
}

// run detects at once and then every natRefresh until stop is closed.
func (w *natWatch) run(stop <-chan struct{}) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		r, err := w.prober.Detect(ctx, w.local(), w.servers)
		cancel()
		w.mu.Lock()
		if err == nil {
			w.last = &r
		}
		w.err = err
		w.mu.Unlock()
		if err != nil {
			w.log.Info("NAT detection", zap.Error(err))
		} else {
			w.log.Info("NAT detection", zap.Stringer("mapping", r.Mapping))
		}
		select {
		case <-stop:
			return
		case <-time.After(natRefresh):
		}
	}
}

// status returns what the last detection found, for Status.
func (w *natWatch) status() *NATStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &NATStatus{}
	if w.err != nil {
		s.Error = w.err.Error()
	}
	if r := w.last; r != nil {
		s.Mapping, s.Public, s.Local = r.Mapping.String(), r.Public.String(), r.Local.String()
		s.Servers = len(r.Servers)
	}
	return s
}
