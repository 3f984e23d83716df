package scale

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/cmd/internal/discovery"
	"github.com/meshvpn/meshvpn/cmd/internal/exitnode"
	"github.com/meshvpn/meshvpn/core/genesis"
	"github.com/meshvpn/meshvpn/dht"
)

var (
	report   = flag.Bool("report", false, "run the discovery scale run and print its figures (make bench)")
	nodes    = flag.Int("nodes", 1000, "DHT nodes in all")
	relays   = flag.Int("relays", 300, "of which relays")
	verbose  = flag.Bool("verbose", false, "log the authority")
	deadline = flag.Duration("deadline", 120*time.Second, "give up after this long")
)

func udp(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res uint64
	fmt.Sscan(string(b), &size, &res)
	return res * uint64(os.Getpagesize())
}

// TestReport runs the scale run. Without -report it runs a small version (20 nodes, 6 relays), so
// that the code path stays tested in `make test`.
func TestReport(t *testing.T) {
	total, nrelays := 20, 6
	if *report {
		total, nrelays = *nodes, *relays
	}
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	dir := t.TempDir()
	log := zap.NewNop()

	t0 := time.Now()
	boot, err := dht.New(dht.Config{Conn: udp(t), First: true})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	bootAddr := []netip.AddrPort{boot.Addr()}

	// The genesis names one authority, whose key is made first.
	authDir := filepath.Join(dir, "auth")
	id, err := discovery.LoadIdentity(authDir, false, log)
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := httpLn.Addr().String()
	httpLn.Close()
	g := &genesis.Genesis{Name: "scale", Threshold: 1, Bootstrap: bootAddr,
		Authorities: []genesis.Authority{{Identity: id.Public(), URL: "http://" + httpAddr}}}
	if g.NetworkID, err = genesis.GenerateNetworkID(rand.Reader); err != nil {
		t.Fatal(err)
	}
	text, _ := g.Encode()
	gfile := filepath.Join(dir, "genesis")
	os.WriteFile(gfile, text, 0o644)

	// Plain DHT nodes: the rest of the DHT.
	var mu sync.Mutex
	var plain []*dht.Node
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range total - nrelays - 1 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := dht.New(dht.Config{Conn: udp(t), Bootstrap: bootAddr})
			if err != nil {
				t.Error(err)
				return
			}
			n.Bootstrap(ctx)
			mu.Lock()
			plain = append(plain, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, n := range plain {
			n.Close()
		}
	}()
	dhtUp := time.Since(t0)

	// Relays: the exit node's own code, relay-only, publishing on the DHT.
	t1 := time.Now()
	var rs []*exitnode.Node
	for i := range nrelays {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := exitnode.DefaultConfig()
			c.Name, c.DataDir, c.Listen, c.RelayOnly, c.Metrics = fmt.Sprintf("r%d", i), filepath.Join(dir, fmt.Sprint("r", i)), "127.0.0.1:0", true, ""
			c.Genesis, c.DHTListen = gfile, "127.0.0.1:0"
			n, err := exitnode.Start(c, log)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			rs = append(rs, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, n := range rs {
			n.Close()
		}
	}()
	if t.Failed() {
		return
	}

	ac := discovery.DefaultConfig()
	ac.Genesis, ac.DataDir, ac.Period, ac.Metrics = gfile, authDir, 5*time.Second, ""
	ac.DHT.Listen, ac.HTTP.Listen, ac.Probe.Source = "127.0.0.1:0", httpAddr, "127.0.0.1"
	ac.Probe.Burst, ac.Probe.Concurrency, ac.Crawl.Concurrency = 4, 32, 64
	alog, _ := zap.NewDevelopment()
	if !*verbose {
		alog = log
	}
	a, err := discovery.Start(ac, alog)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var listed int
	for {
		if d, _ := a.Latest(); d != nil {
			listed = len(d.Entries)
			if listed >= nrelays {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("after %v the directory lists %d of %d relays", time.Since(t1).Round(time.Millisecond), listed, nrelays)
		}
		time.Sleep(100 * time.Millisecond)
	}
	complete := time.Since(t1)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if !*report {
		return
	}
	fmt.Printf("discovery on one machine, loopback: %d DHT nodes of which %d relays, one authority\n", total, nrelays)
	fmt.Printf("  DHT of %d nodes bootstrapped in      %v\n", total-nrelays, dhtUp.Round(time.Millisecond))
	fmt.Printf("  relays up to a complete directory     %v (goal < 60 s; rounds every %v)\n", complete.Round(time.Millisecond), ac.Period)
	fmt.Printf("  memory of the whole process           %d MiB RSS, %d MiB Go heap in use (%.0f KiB per DHT node or relay)\n",
		rss()>>20, ms.HeapInuse>>20, float64(rss())/1024/float64(total))
}
