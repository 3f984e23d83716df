package clientd

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
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

var (
	descKillSwitch = prometheus.NewDesc("meshvpn_client_kill_switch_armed", "1 while the kill switch's table is in place (absent with kill_switch = false).", nil, nil)
	descBlocked    = prometheus.NewDesc("meshvpn_client_kill_switch_blocked_packets_total", "Packets the kill switch kept from leaving outside the tunnel since it was armed.", nil, nil)
)

func describeKillSwitch(ch chan<- *prometheus.Desc) {
	ch <- descKillSwitch
	ch <- descBlocked
}

func collectKillSwitch(ch chan<- prometheus.Metric, k *KillSwitchStatus) {
	if k == nil {
		return
	}
	armed := 0.0
	if k.Armed {
		armed = 1
	}
	ch <- daemon.Gauge(descKillSwitch, armed)
	ch <- daemon.Counter(descBlocked, k.Blocked)
}
