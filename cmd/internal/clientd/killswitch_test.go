package clientd

import (
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
