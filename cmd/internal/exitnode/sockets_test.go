package exitnode

import (
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/daemon/daemontest"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// TestTakenPortIsNamed: a port of the node that another program holds (another relay on the host, at
// its default ports) fails Start with an error that names the setting and its flag, as
// meshvpn-exit-node prints it.
func TestTakenPortIsNamed(t *testing.T) {
	udp, tcp := daemontest.TakenPorts(t)
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
		daemontest.PortNamed(t, tc.key, tc.flag, tc.addr, c.Sockets(), func() (func() error, error) {
			n, err := Start(c, zap.NewNop())
			if err != nil {
				return nil, err
			}
			return n.Close, nil
		})
	}
}
