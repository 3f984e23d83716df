package dhtboot

import (
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
)

// TestTakenPortIsNamed: a port of the node that another program holds fails Start with an error that
// names the setting and its flag, as meshvpn-dht-bootstrap prints it.
func TestTakenPortIsNamed(t *testing.T) {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	udp, tcp := uc.LocalAddr().String(), ln.Addr().String()
	for _, tc := range []struct {
		key, flag, addr string
		set             func(*Config, string)
	}{
		{"dht.listen", "--dht-listen", udp, func(c *Config, a string) { c.DHT.Listen = a }},
		{"stun.listen", "--stun-listen", udp, func(c *Config, a string) { c.STUN.Listen = a }},
		{"metrics", "--metrics", tcp, func(c *Config, a string) { c.Metrics = a }},
	} {
		c := testConfig(t)
		tc.set(&c, tc.addr)
		n, err := Start(c, zap.NewNop())
		if err == nil {
			n.Close()
			t.Fatalf("%s %s: started on a taken port", tc.key, tc.addr)
		}
		msg := daemon.ExplainPortTaken(err, c.Sockets()...).Error()
		if !strings.Contains(msg, tc.key+" "+tc.addr+":") || !strings.Contains(msg, tc.flag) {
			t.Errorf("%s taken: %q names neither the setting nor its flag", tc.key, msg)
		}
	}
}
