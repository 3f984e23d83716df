package exitnode

import (
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestTakenPortIsNamed: a port of the node that another program holds (another relay on the host, at
// its default ports) fails Start with an error that names the setting and its flag, as
// meshvpn-exit-node prints it.
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
	dir := t.TempDir()
	g := &genesis.Genesis{Name: "test", Threshold: 1, Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}
	g.NetworkID, _ = genesis.GenerateNetworkID(rand.Reader)
	auth, _ := keys.GenerateIdentity(rand.Reader)
	g.Authorities = []genesis.Authority{{Identity: auth.Public(), URL: "http://127.0.0.1:1"}}
	text, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	gpath := filepath.Join(dir, "genesis")
	if err := os.WriteFile(gpath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, flag, addr string
		set             func(*Config, string)
	}{
		{"listen", "--listen", udp, func(c *Config, a string) { c.Listen = a }},
		{"metrics", "--metrics", tcp, func(c *Config, a string) { c.Metrics = a }},
		{"dht_listen", "--dht-listen", udp, func(c *Config, a string) { c.Genesis, c.DHTListen = gpath, a }},
	} {
		c := DefaultConfig()
		c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", filepath.Join(dir, "data"), "127.0.0.1:0", true, ""
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
