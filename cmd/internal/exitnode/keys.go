package exitnode

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// identityFile is the node's identity key in the data directory; stateFiles are what a node that ran
// there leaves beside it.
const identityFile = "identity.key"

var stateFiles = []string{"link.key", onionFile, prevOnionFile, "dht-nodes", EntryFile}

// CheckKeys checks the node's keys in dir without making or changing any file: each key file there
// must load (a key readable by others is refused, as the loaders do), and a missing identity key
// beside the node's other keys or state is refused unless newIdentity. A data directory a node never
// ran in passes: its first start makes the keys. Its errors are daemon.ConfigErrors.
func CheckKeys(dir string, newIdentity bool) error {
	if err := checkKeyFiles(dir); err != nil {
		return daemon.Misconfigured(err)
	}
	return daemon.Misconfigured(daemon.MissingIdentity(dir, identityFile, stateFiles, newIdentity))
}

func checkKeyFiles(dir string) error {
	var errs []error
	if _, err := keys.LoadIdentity(filepath.Join(dir, identityFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, f := range []string{"link.key", onionFile, prevOnionFile} {
		if _, err := keys.LoadStatic(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ports are the node's sockets, bound at the start before anything else is made; each is set to nil
// when it is handed over to its owner, and close closes those that were not.
type ports struct {
	link, dht *net.UDPConn
	metrics   net.Listener
}

// bindPorts binds the node's ports: listen, dht_listen (with a genesis file) and metrics (unless off).
func bindPorts(cfg Config) (p ports, err error) {
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.link, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(cfg.Listen))); err != nil {
		return p, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if cfg.Genesis != "" {
		if p.dht, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(cfg.DHTListen))); err != nil {
			return p, fmt.Errorf("dht listen %s: %w", cfg.DHTListen, err)
		}
	}
	if cfg.Metrics != "" {
		if p.metrics, err = daemon.ListenMetrics(cfg.Metrics, cfg.MetricsPublic); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (p *ports) close() {
	if p.link != nil {
		p.link.Close()
	}
	if p.dht != nil {
		p.dht.Close()
	}
	if p.metrics != nil {
		p.metrics.Close()
	}
	*p = ports{}
}

// Check checks what Start would find at its start, without starting anything or making any file: the
// genesis file, when one is named, and the keys in the data directory (CheckKeys). Its errors are
// daemon.ConfigErrors.
func Check(cfg Config) error {
	if cfg.Genesis != "" {
		if _, err := daemon.LoadGenesis(cfg.Genesis); err != nil {
			return err
		}
	}
	return CheckKeys(cfg.DataDir, cfg.NewIdentity)
}
