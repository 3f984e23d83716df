package clientd

import (
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/network/sysdns"
)

func (c *DNSConfig) validate(cfg *Config) []error {
	var errs []error
	if err := sysdns.Mode(c.Mode).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("dns.mode: %w", err))
	}
	if c.Mode != string(sysdns.Off) {
		if !filepath.IsAbs(c.ResolvConf) {
			errs = append(errs, fmt.Errorf("dns.resolv_conf %q: want an absolute path", c.ResolvConf))
		}
		if cfg.Genesis == "" && !filepath.IsAbs(cfg.StateDir) {
			errs = append(errs, fmt.Errorf("state_dir %q: want an absolute path (the resolv.conf file DNS replaces is kept there)", cfg.StateDir))
		}
	}
	return errs
}

// dnsBackup is where the resolv.conf file the client replaced is kept until it is put back.
func (c *Config) dnsBackup() string { return filepath.Join(c.StateDir, "resolv.conf.backup") }

// pointDNS sends the host's DNS to the tunnel resolver (network/sysdns), the TUN being up.
func (d *Daemon) pointDNS() error {
	if d.cfg.DNS.Mode == string(sysdns.Off) {
		return nil
	}
	s, err := sysdns.Apply(sysdns.Config{
		Mode: sysdns.Mode(d.cfg.DNS.Mode), Server: exitdns.Addr, Link: d.cfg.TUN.Name,
		ResolvConf: d.cfg.DNS.ResolvConf, Backup: d.cfg.dnsBackup(), Logger: d.log.Named("dns"),
	})
	if err != nil {
		return fmt.Errorf("DNS: %w", err)
	}
	d.dns = s
	d.stack.Push("DNS", s.Restore)
	d.log.Info("DNS goes through the tunnel", zap.String("via", string(s.Mode())))
	return nil
}

// RestoreDNS puts back the resolv.conf file a client that did not stop cleanly replaced (`down` after a
// crash; `up` does it too). It reports whether there was one to put back.
func RestoreDNS(cfg Config, log *zap.Logger) (bool, error) {
	if !filepath.IsAbs(cfg.StateDir) {
		return false, nil
	}
	return sysdns.Recover(cfg.dnsBackup(), log)
}
