package exitnode

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// Datagrams that are spoiled or no link packet at all, sent at a relay, show in its metrics by
// reason (meshvpn_link_drops_total): a flood of them is seen, not silent.
func TestLinkDropsInMetrics(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := DefaultConfig()
	c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", t.TempDir(), "127.0.0.1:0", true, "127.0.0.1:0"
	n, err := Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	to := n.Relay().Info().Addr
	for range 3 {
		raw.WriteToUDPAddrPort([]byte("random junk, no link packet"), to)
	}
	raw.WriteToUDPAddrPort([]byte{4, 0, 0, 0, 1, 2}, to) // a transport packet's type, too short for one
	want := []string{
		`meshvpn_link_drops_total{reason="garbage"} 3`,
		`meshvpn_link_drops_total{reason="too_short"} 1`,
		`meshvpn_link_drops_total{reason="bad_mac"} 0`,
		`meshvpn_link_packets_total{direction="in"} 4`,
	}
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + n.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}
