package exitnode

import (
	"crypto/rand"
	"errors"
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

// TestALostIdentityIsRefused: a node whose data directory holds its other keys but no identity key
// (a restore that lost it) does not start as a new relay unless --new-identity; check says so too.
func TestALostIdentityIsRefused(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", dir, "127.0.0.1:0", true, ""
	n, err := Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	old := n.Relay().Info().Identity
	n.Close()
	if err := CheckKeys(dir, false); err != nil {
		t.Fatalf("check of a good data directory: %v", err)
	}
	idPath := filepath.Join(dir, identityFile)
	if err := os.Remove(idPath); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { _, err := Start(c, zap.NewNop()); return err },
		func() error { _, err := LoadKeys(dir, false, zap.NewNop()); return err },
		func() error { return CheckKeys(dir, false) },
	} {
		err := try()
		if daemon.ExitCode(err) != daemon.ExitUsage || !strings.Contains(err.Error(), "--new-identity") || !strings.Contains(err.Error(), "link.key") {
			t.Fatalf("no identity beside the other keys: %v", err)
		}
		if _, err := os.Stat(idPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a new identity key was made")
		}
	}
	c.NewIdentity = true
	if n, err = Start(c, zap.NewNop()); err != nil {
		t.Fatalf("--new-identity: %v", err)
	}
	defer n.Close()
	if n.Relay().Info().Identity == old {
		t.Fatal("the same identity from nowhere")
	}
	// A key others can read is found by check, as by a start.
	if err := os.Chmod(filepath.Join(dir, "link.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeys(dir, false); !errors.Is(err, keys.ErrInsecurePermissions) {
		t.Fatalf("a key readable by others: %v", err)
	}
}

// TestATakenPortFailsBeforeAnyKeyIsMade: the node binds its ports (links, DHT, metrics) before it
// makes its keys, so that a start that cannot serve leaves no new identity behind.
func TestATakenPortFailsBeforeAnyKeyIsMade(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	taken := udp.LocalAddr().String()
	gen := writeGenesis(t)
	for _, tc := range []struct {
		name                       string
		listen, dhtListen, metrics string
	}{
		{"listen", taken, "", ""},
		{"dht_listen", "127.0.0.1:0", taken, ""},
		{"metrics", "127.0.0.1:0", "127.0.0.1:0", tcp.Addr().String()},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		c := DefaultConfig()
		c.Name, c.DataDir, c.RelayOnly = "r1", dir, true
		c.Listen, c.DHTListen, c.Metrics = tc.listen, tc.dhtListen, tc.metrics
		if tc.dhtListen != "" {
			c.Genesis = gen
		}
		n, err := Start(c, zap.NewNop())
		if err == nil {
			n.Close()
			t.Fatalf("%s: started on a taken port", tc.name)
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("%s: %v", tc.name, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			entries, _ := os.ReadDir(dir)
			t.Errorf("%s taken: the data directory was made, with %v", tc.name, entries)
		}
	}
}

// writeGenesis writes a genesis file of a network nobody runs.
func writeGenesis(t *testing.T) string {
	t.Helper()
	id, err := keys.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := &genesis.Genesis{Name: "test", Threshold: 1, Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")},
		Authorities: []genesis.Authority{{Identity: id.Public(), URL: "http://127.0.0.1/"}}}
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	b, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "genesis")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
