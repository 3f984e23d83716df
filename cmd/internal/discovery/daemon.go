package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/authority"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// IdentityFile is the authority's identity key in the data directory, besides the authority's own
// files (authority.DBFile, authority.NodesFile).
const IdentityFile = "identity.key"

// LoadIdentity loads the authority's identity key from dir, generating and saving it (0600) if there
// is none.
func LoadIdentity(dir string, log *zap.Logger) (*keys.Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	id, created, err := keys.LoadOrCreateIdentity(filepath.Join(dir, IdentityFile), rand.Reader)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated a new identity key", zap.String("dir", dir), zap.Stringer("identity", id.Public()))
	}
	return id, nil
}

// Daemon is a running meshvpn-discovery: the authority, and its metrics.
type Daemon struct {
	*authority.Authority
	metrics *daemon.MetricsServer
	stack   *daemon.Stack
}

// Start loads the genesis file and the identity key and starts the authority with cfg, and its
// metrics. When it returns without error the directory is served.
func Start(cfg Config, log *zap.Logger) (_ *Daemon, err error) {
	ac, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if ac.Genesis, err = daemon.LoadGenesis(cfg.Genesis); err != nil {
		return nil, err
	}
	if ac.Identity, err = LoadIdentity(cfg.DataDir, log); err != nil {
		return nil, err
	}
	a, err := authority.Start(ac, log)
	if errors.Is(err, authority.ErrNotAuthority) {
		return nil, fmt.Errorf("%w (genesis %s); put it there with meshvpn-bootstrap init (meshvpn-discovery info prints it)", err, cfg.Genesis)
	}
	if err != nil {
		return nil, err
	}
	d := &Daemon{Authority: a, stack: daemon.NewStack(context.Background())}
	d.stack.Closer("authority", a)
	if cfg.Metrics != "" {
		cs := []prometheus.Collector{&collector{a: a}, daemon.LinkMetrics(a.ProbeLinkStats)}
		if d.metrics, err = daemon.ServeMetrics(cfg.Metrics, cfg.MetricsPublic, log, cs...); err != nil {
			d.Close()
			return nil, err
		}
		d.stack.Closer("metrics", d.metrics)
	}
	return d, nil
}

// MetricsAddr returns where metrics are served, or nil when they are off.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.Addr()
}

// Close stops the authority (a round in progress is cut short and not published) and the metrics.
func (d *Daemon) Close() error { return d.stack.Close() }
