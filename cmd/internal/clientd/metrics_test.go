package clientd

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/network/link"
)

// The gaps in the exit's cell counters reach the metrics, both kinds, from the client's own counts.
func TestMetricsExportCellGaps(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	node, err := client.NewNode(conn, link.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Node: node})
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&collector{d: &Daemon{client: c}})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "meshvpn_client_cell_gaps_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && m.GetCounter().GetValue() == 0 {
					kinds[l.GetValue()] = true
				}
			}
		}
	}
	if !kinds["skipped"] || !kinds["late"] {
		t.Fatalf("meshvpn_client_cell_gaps_total kinds at zero: %v, want skipped and late", kinds)
	}
}
