package clientd

import (
	"net/netip"

	"go.uber.org/zap"
)

// allowAuthorities lets the directory authorities through the kill switch, for a fetch around the
// tunnel, and returns what takes them out again: the fetch's own connections close first.
func (d *Daemon) allowAuthorities() (revoke func()) {
	if d.fw == nil {
		return func() {}
	}
	var allowed []netip.AddrPort
	for _, a := range d.authorities {
		if err := d.fw.AllowTCP(a); err != nil {
			d.log.Warn("kill switch: letting a directory authority through", zap.Error(err))
			continue
		}
		allowed = append(allowed, a)
	}
	return func() {
		for _, a := range allowed {
			if err := d.fw.RevokeTCP(a); err != nil {
				d.log.Warn("kill switch: closing the way to a directory authority", zap.Error(err))
			}
		}
	}
}
