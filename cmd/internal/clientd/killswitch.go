package clientd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

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

// pinnedClient is the directory fetcher's HTTP client: it dials each authority (by the "host:port" the
// transport asks for) at the addresses resolved when the client started, so that no fetch needs DNS,
// which the kill switch blocks outside the tunnel, and it lets through exactly those addresses.
func pinnedClient(pins map[string][]netip.AddrPort) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		aps, ok := pins[addr]
		if !ok {
			return d.DialContext(ctx, network, addr)
		}
		var errs []error
		for _, ap := range aps {
			c, err := d.DialContext(ctx, network, ap.String())
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// dialAddr returns the "host:port" an HTTP transport dials for the URL.
func dialAddr(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port), port != ""
}
