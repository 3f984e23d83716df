package exitnode

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
	"github.com/meshvpn/meshvpn/network/natcheck"
	"github.com/meshvpn/meshvpn/network/stun"
)

func dhtNode(t *testing.T, first bool, boot ...netip.AddrPort) *dht.Node {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{Conn: c, Bootstrap: boot, First: first})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestNodePublishesItsDescriptor starts a relay with a genesis file: it puts its signed descriptor on
// the DHT under its identity, announces itself under the network's infohash, and answers whois.
func TestNodePublishesItsDescriptor(t *testing.T) {
	boot := dhtNode(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	stunSrv := stun.Serve(sc, 0, nil)
	defer stunSrv.Close()
	g := &genesis.Genesis{Name: "test", Threshold: 1, Bootstrap: []netip.AddrPort{boot.Addr()}, STUN: []netip.AddrPort{stunSrv.Addr()}}
	g.NetworkID, _ = genesis.GenerateNetworkID(rand.Reader)
	auth, _ := keys.GenerateIdentity(rand.Reader)
	g.Authorities = []genesis.Authority{{Identity: auth.Public(), URL: "http://127.0.0.1:1"}}
	text, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gpath := filepath.Join(dir, "genesis")
	os.WriteFile(gpath, text, 0o644)
	c := DefaultConfig()
	c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = "r1", filepath.Join(dir, "data"), "127.0.0.1:0", true, ""
	c.Genesis, c.DHTListen, c.PublishInterval, c.Country = gpath, "127.0.0.1:0", time.Second, "NL"
	n, err := Start(c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id := n.Relay().Info().Identity

	look := dhtNode(t, false, boot.Addr())
	if err := look.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for raw == nil {
		if v, _, err := look.Fetch(ctx, ed25519.PublicKey(id[:]), g.NetworkID[:]); err == nil {
			raw = v
		} else if ctx.Err() != nil {
			t.Fatalf("descriptor never on the DHT: %v", err)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	d, err := descriptor.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(time.Now(), g.NetworkID); err != nil {
		t.Fatal(err)
	}
	if d.Identity != id || d.Addresses[0] != n.Relay().Info().Addr || d.LinkKey != n.Relay().Info().LinkKey || d.IsExit() || d.Country != "NL" {
		t.Fatalf("descriptor %+v for relay %+v", d, n.Relay().Info())
	}
	for {
		peers, _ := look.FindPeers(ctx, dht.NetworkInfohash(g.NetworkID))
		if slices.Contains(peers, n.Relay().Info().Addr) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never announced: peers %v", peers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The address announced answers whois with the identity whose descriptor is on the DHT.
	q, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer q.Close()
	nonce := [whois.NonceLen]byte{5}
	q.WriteToUDPAddrPort(whois.Request(nonce), n.Relay().Info().Addr)
	q.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 200)
	k, err := q.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if net, who, err := whois.ParseAnswer(buf[:k], nonce); err != nil || who != id || net != g.NetworkID {
		t.Fatalf("whois: %v %v %v", net, who, err)
	}
	// The node asked the genesis file's STUN server about its own socket: on loopback, no NAT.
	for n.NAT() == nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if r := n.NAT(); r == nil || r.Mapping != natcheck.None || r.Public != n.Relay().Info().Addr {
		t.Fatalf("NAT report %+v", r)
	}
}
