package clientd

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type killSwitchCollector struct{ k *KillSwitchStatus }

func (c killSwitchCollector) Describe(ch chan<- *prometheus.Desc) { describeKillSwitch(ch) }
func (c killSwitchCollector) Collect(ch chan<- prometheus.Metric) { collectKillSwitch(ch, c.k) }

// The kill switch's state reaches the metrics when it is enabled, and nothing of it when it is not.
func TestMetricsExportKillSwitch(t *testing.T) {
	for _, k := range []*KillSwitchStatus{nil, {Armed: true, Blocked: 7}, {Armed: false, Blocked: 0}} {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(killSwitchCollector{k})
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				switch f.GetName() {
				case "meshvpn_client_kill_switch_armed":
					got["armed"] = m.GetGauge().GetValue()
				case "meshvpn_client_kill_switch_blocked_packets_total":
					got["blocked"] = m.GetCounter().GetValue()
				}
			}
		}
		switch {
		case k == nil && len(got) != 0:
			t.Errorf("kill switch off: exported %v", got)
		case k != nil && (got["armed"] != map[bool]float64{true: 1}[k.Armed] || got["blocked"] != float64(k.Blocked)):
			t.Errorf("%+v: exported %v", *k, got)
		}
	}
}

// The directory fetcher dials an authority named by host name at the address resolved at start: no
// fetch needs DNS (which the kill switch blocks outside the tunnel). The name here resolves nowhere.
func TestPinnedClientNeedsNoDNS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "directory") }))
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	url := fmt.Sprintf("http://authority.invalid:%d/directory", ap.Port())
	hp, ok := dialAddr(url)
	if !ok || hp != fmt.Sprintf("authority.invalid:%d", ap.Port()) {
		t.Fatalf("dialAddr(%s) = %q, %v", url, hp, ok)
	}
	hc := pinnedClient(map[string][]netip.AddrPort{hp: {netip.MustParseAddrPort("127.0.0.1:1"), ap}})
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "directory" {
		t.Fatalf("got %q", body)
	}
	if resp, err := hc.Get(srv.URL); err != nil { // an address nobody pinned is dialled as it is
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	for raw, want := range map[string]string{
		"https://a1.example.net/directory": "a1.example.net:443",
		"http://[2001:db8::1]/d":           "[2001:db8::1]:80",
		"http://10.240.0.31:8080":          "10.240.0.31:8080",
	} {
		if got, ok := dialAddr(raw); !ok || got != want {
			t.Errorf("dialAddr(%s) = %q, want %q", raw, got, want)
		}
	}
}
