package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/authority"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// IdentityFile is the authority's identity key in the data directory, besides the authority's own
// files (authority.DBFile, authority.NodesFile).
const IdentityFile = "identity.key"

// stateFiles are what an authority that ran in a data directory leaves beside its identity key.
var stateFiles = []string{authority.DBFile, authority.NodesFile}

// LoadIdentity loads the authority's identity key from dir, generating and saving it (0600) if there
// is none. A missing key beside an authority's database is refused unless newIdentity: the genesis
// files of the network name the old one (daemon.MissingIdentity).
func LoadIdentity(dir string, newIdentity bool, log *zap.Logger) (*keys.Identity, error) {
	if err := daemon.MissingIdentity(dir, IdentityFile, stateFiles, newIdentity); err != nil {
		return nil, err
	}
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

// notListed is the error for an identity the genesis file does not list.
func notListed(err error, genesis string) error {
	return fmt.Errorf("%w (genesis %s); put it there with meshvpn-bootstrap init (meshvpn-discovery info prints it)", err, genesis)
}

// Check checks what Start would find at its start, without starting anything or making any file: the
// genesis file, and the identity key in the data directory, which it must list. Its errors are
// daemon.ConfigErrors.
func Check(cfg Config) error {
	g, err := daemon.LoadGenesis(cfg.Genesis)
	if err != nil {
		return err
	}
	if err := daemon.MissingIdentity(cfg.DataDir, IdentityFile, stateFiles, cfg.NewIdentity); err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, IdentityFile)
	id, err := keys.LoadIdentity(path)
	if errors.Is(err, fs.ErrNotExist) {
		return daemon.Misconfigured(fmt.Errorf("no identity key %s yet, so the genesis %s cannot list it: \"meshvpn-discovery info\" makes it and prints it for meshvpn-bootstrap init", path, cfg.Genesis))
	}
	if err != nil {
		return daemon.Misconfigured(err)
	}
	if !slices.ContainsFunc(g.Authorities, func(a genesis.Authority) bool { return a.Identity == id.Public() }) {
		return daemon.Misconfigured(notListed(fmt.Errorf("this authority's identity %s is %w %q", id.Public(), authority.ErrNotAuthority, g.Name), cfg.Genesis))
	}
	return nil
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
	// The ports before the key and the database: a port another program holds stops the start
	// before anything is made.
	if ac.Ports, err = authority.Bind(ac.DHTListen, ac.HTTPListen); err != nil {
		return nil, err
	}
	defer ac.Ports.Close() // what Start did not take
	var metrics net.Listener
	if cfg.Metrics != "" {
		if metrics, err = daemon.ListenMetrics(cfg.Metrics, cfg.MetricsPublic); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				metrics.Close()
			}
		}()
	}
	if ac.Identity, err = LoadIdentity(cfg.DataDir, cfg.NewIdentity, log); err != nil {
		return nil, err
	}
	a, err := authority.Start(ac, log)
	if errors.Is(err, authority.ErrNotAuthority) {
		return nil, daemon.Misconfigured(notListed(err, cfg.Genesis))
	}
	if err != nil {
		return nil, err
	}
	d := &Daemon{Authority: a, stack: daemon.NewStack(context.Background())}
	d.stack.Closer("authority", a)
	if metrics != nil {
		cs := []prometheus.Collector{&collector{a: a}, daemon.LinkMetrics(a.ProbeLinkStats)}
		if d.metrics, err = daemon.ServeMetricsOn(metrics, log, cs...); err != nil {
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
