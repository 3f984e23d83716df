package sysdns

import (
	"errors"
	"fmt"
	"net/netip"

	"go.uber.org/zap"
)

// Mode is how the host's DNS is pointed at the tunnel.
type Mode string

// The modes.
const (
	Auto     Mode = "auto"     // Resolved where systemd-resolved manages this host's DNS, else File
	Resolved Mode = "resolved" // systemd-resolved over D-Bus
	File     Mode = "file"     // replace the resolv.conf file
	Off      Mode = "off"      // leave DNS alone
)

// Validate reports whether m is a mode.
func (m Mode) Validate() error {
	switch m {
	case Auto, Resolved, File, Off:
		return nil
	}
	return fmt.Errorf("dns mode %q: want auto, resolved, file or off", string(m))
}

// Config says what to point where.
type Config struct {
	Mode Mode
	// Server is the resolver every name goes to (the tunnel resolver).
	Server netip.Addr
	// Link is the tunnel's network device: Server is routed into it, and systemd-resolved gets Server
	// on it. Empty: no route is added (tests on files).
	Link string
	// ResolvConf is the file File mode replaces (default /etc/resolv.conf). Under `ip netns exec` it
	// is the namespace's own file, bind-mounted there.
	ResolvConf string
	// Backup is where File mode keeps the previous file until it is restored: in the client's state
	// directory, so that a later run finds it after a crash.
	Backup string
	Logger *zap.Logger
}

// DefaultResolvConf is the resolver configuration file of the host.
const DefaultResolvConf = "/etc/resolv.conf"

// Setting is DNS pointed at the tunnel, until Restore.
type Setting struct {
	mode     Mode
	unroute  func() error // nil without a route
	file     *fileSetting
	resolved *resolvedSetting
}

// Mode returns how DNS was pointed at the tunnel (File or Resolved; Off when nothing was done).
func (s *Setting) Mode() Mode { return s.mode }

// Apply points the host's DNS at cfg.Server. A backup an earlier run left behind (it crashed) is
// restored first, so the backup always holds the file from before MeshVPN.
func Apply(cfg Config) (*Setting, error) {
	if err := cfg.Mode.Validate(); err != nil {
		return nil, err
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if !cfg.Server.IsValid() {
		return nil, errors.New("sysdns: no server")
	}
	mode := cfg.Mode
	if mode == Off {
		return &Setting{mode: Off}, nil
	}
	if mode == Auto {
		mode = File
		if resolvedManages(cfg.ResolvConf) {
			if err := resolvedHere(); err == nil {
				mode = Resolved
			} else {
				cfg.Logger.Info("systemd-resolved serves resolv.conf but cannot be used; replacing the file", zap.Error(err))
			}
		}
	}
	s := &Setting{mode: mode}
	if cfg.Link != "" {
		var err error
		if s.unroute, err = routeServer(cfg.Link, cfg.Server); err != nil {
			return nil, err
		}
	}
	var err error
	switch mode {
	case Resolved:
		s.resolved, err = applyResolved(cfg.Link, cfg.Server)
	default:
		if cfg.Backup == "" {
			err = errors.New("sysdns: no backup path for the resolv.conf file")
			break
		}
		s.file, err = applyFile(cfg.ResolvConf, cfg.Backup, cfg.Server, cfg.Logger)
	}
	if err != nil {
		if s.unroute != nil {
			err = errors.Join(err, s.unroute())
		}
		return nil, err
	}
	return s, nil
}

// Restore puts the host's DNS back as it was before Apply.
func (s *Setting) Restore() error {
	if s == nil {
		return nil
	}
	var err error
	switch {
	case s.file != nil:
		_, err = restoreFile(s.file.backup, s.file.log)
	case s.resolved != nil:
		err = s.resolved.revert()
	}
	if s.unroute != nil {
		err = errors.Join(err, s.unroute())
	}
	return err
}

// Recover restores the resolv.conf file a run that did not end cleanly replaced, from its backup.
// It reports whether there was one. With no backup it does nothing.
func Recover(backup string, log *zap.Logger) (bool, error) {
	if log == nil {
		log = zap.NewNop()
	}
	return restoreFile(backup, log)
}
