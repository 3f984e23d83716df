package dht

import (
	"crypto/ed25519"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
)

func testNodeInfo(id byte, addr string) krpc.NodeInfo {
	var n krpc.NodeInfo
	n.ID[0], n.ID[19] = id, id
	n.Addr.FromAddrPort(netip.MustParseAddrPort(addr))
	return n
}

func TestNodesFileRoundTrip(t *testing.T) {
	f := nodesFile{
		Self:  krpc.ID{0xaa, 19: 0xbb},
		Nodes: []krpc.NodeInfo{testNodeInfo(1, "127.0.0.1:6881"), testNodeInfo(2, "[2001:db8::2]:7000")},
	}
	b := encodeNodesFile(f)
	t.Logf("nodes file:\n%s", b)
	got, err := decodeNodesFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, f)
	}
}

func TestNodesFileRejectsDamage(t *testing.T) {
	good := string(encodeNodesFile(nodesFile{Nodes: []krpc.NodeInfo{testNodeInfo(1, "127.0.0.1:6881")}}))
	for name, text := range map[string]string{
		"no header":      "node 0100000000000000000000000000000000000001 127.0.0.1:1\n",
		"short id":       nodesFileHeader + "\nnode 01 127.0.0.1:1\n",
		"zero id":        nodesFileHeader + "\nnode 0000000000000000000000000000000000000000 127.0.0.1:1\n",
		"port 0":         nodesFileHeader + "\nnode 0100000000000000000000000000000000000001 127.0.0.1:0\n",
		"unspecified":    nodesFileHeader + "\nnode 0100000000000000000000000000000000000001 0.0.0.0:1\n",
		"hostname":       nodesFileHeader + "\nnode 0100000000000000000000000000000000000001 router.bittorrent.com:6881\n",
		"duplicate addr": good + "node 0200000000000000000000000000000000000002 127.0.0.1:6881\n",
		"unknown line":   good + "peer 1.2.3.4:5\n",
		"two selves":     nodesFileHeader + "\nself 0100000000000000000000000000000000000001\nself 0100000000000000000000000000000000000001\n",
	} {
		if _, err := decodeNodesFile([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var many strings.Builder
	many.WriteString(nodesFileHeader + "\n")
	for i := range maxSavedNodes + 1 {
		many.WriteString(string(encodeNodesFile(nodesFile{Nodes: []krpc.NodeInfo{
			testNodeInfo(1, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i+1)).String())}})[len(nodesFileHeader)+1:]))
	}
	if _, err := decodeNodesFile([]byte(many.String())); err == nil {
		t.Errorf("accepted %d nodes", maxSavedNodes+1)
	}
}

func FuzzDecodeNodesFile(f *testing.F) {
	f.Add(encodeNodesFile(nodesFile{Self: krpc.ID{1}, Nodes: []krpc.NodeInfo{testNodeInfo(1, "127.0.0.1:6881"), testNodeInfo(2, "[::1]:1")}}))
	f.Add([]byte(nodesFileHeader + "\n# comment\n\nnode 0100000000000000000000000000000000000001 [fe80::1%eth0]:1\n"))
	f.Add([]byte(nodesFileHeader + "\nnode 0100000000000000000000000000000000000001 [::ffff:1.2.3.4]:5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeNodesFile(b)
		if err != nil {
			return
		}
		again, err := decodeNodesFile(encodeNodesFile(got))
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip changed the file:\n got %+v\nwant %+v", again, got)
		}
	})
}

// TestNodesFileRestart saves a node's routing table on Close and restarts it with no Bootstrap list
// but the file: it reaches the others and keeps its id.
func TestNodesFileRestart(t *testing.T) {
	nodes := startNetwork(t, 4)
	path := filepath.Join(t.TempDir(), "nodes")
	n := startNode(t, Config{Bootstrap: []netip.AddrPort{nodes[0].Addr()}, NodesFile: path})
	if err := n.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no nodes file after Close: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("nodes file mode %v, want 0600", info.Mode().Perm())
	}
	// Publish something the restarted node must reach.
	_, key, _ := ed25519.GenerateKey(nil)
	if err := nodes[2].Publish(testContext(t), key, nil, 1, []byte("after restart")); err != nil {
		t.Fatal(err)
	}

	// The daemon comes back on its old address, as a restarted one does.
	pc, err := net.ListenPacket("udp4", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	restarted := startNode(t, Config{Conn: loopbackConn{PacketConn: pc, t: t}, NodesFile: path})
	if restarted.ID() != id {
		t.Errorf("restarted with id %x, want the saved %x", restarted.ID(), id)
	}
	if err := restarted.Bootstrap(testContext(t)); err != nil {
		t.Fatalf("Bootstrap from the nodes file: %v", err)
	}
	v, _, err := restarted.Fetch(testContext(t), key.Public().(ed25519.PublicKey), nil)
	if err != nil || string(v) != "after restart" {
		t.Fatalf("Fetch after restart = %q, %v", v, err)
	}

	// Without the file there is nothing to start from.
	other := listenLoopback(t)
	defer other.Close()
	if _, err := New(Config{Conn: other, NodesFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("New with no Bootstrap and a missing nodes file succeeded")
	}
}

// TestStaleNodesFileFallsBackToBootstrap starts from a nodes file whose nodes are all gone: the
// library would never try the Bootstrap list, since its table is not empty.
func TestStaleNodesFileFallsBackToBootstrap(t *testing.T) {
	nodes := startNetwork(t, 3)
	dead := listenLoopback(t)
	deadAddr := dead.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	dead.Close()
	path := filepath.Join(t.TempDir(), "nodes")
	if err := writeNodesFile(path, nodesFile{Nodes: []krpc.NodeInfo{testNodeInfo(7, deadAddr.String())}}); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{Bootstrap: []netip.AddrPort{nodes[0].Addr()}, NodesFile: path})
	if err := n.Bootstrap(testContext(t)); err != nil {
		t.Fatalf("Bootstrap with a stale nodes file: %v", err)
	}
	if n.Stats().GoodNodes < 2 {
		t.Errorf("GoodNodes = %d after Bootstrap", n.Stats().GoodNodes)
	}
}

func TestNodesFileSavedPeriodically(t *testing.T) {
	nodes := startNetwork(t, 2)
	path := filepath.Join(t.TempDir(), "nodes")
	n := startNode(t, Config{Bootstrap: []netip.AddrPort{nodes[0].Addr()}, NodesFile: path, SaveInterval: 20 * time.Millisecond})
	if err := n.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(2*time.Second, func() bool {
		f, err := readNodesFile(path)
		return err == nil && len(f.Nodes) >= 1
	}) {
		t.Fatal("nodes file not written while running")
	}
}
