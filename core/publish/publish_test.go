package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/dht"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dhtNode starts a DHT node on loopback, bootstrapped from boot (none: the first), closed when the
// test ends.
func dhtNode(t *testing.T, boot ...netip.AddrPort) *dht.Node {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{Conn: c, Bootstrap: boot, First: len(boot) == 0, QueryTimeout: 250 * time.Millisecond})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(boot) > 0 {
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: %s", what)
		}
	}
}

// TestPublisher: an unreachable relay publishes nothing; once it is reached directly its signed
// descriptor is on the DHT under its identity (seq the descriptor's) and its link port is announced;
// each publication takes a higher seq; reached through a rendezvous, it is not announced.
func TestPublisher(t *testing.T) {
	boot := dhtNode(t)
	own, look := dhtNode(t, boot.Addr()), dhtNode(t, boot.Addr())
	id, _ := keys.GenerateIdentity(rand.Reader)
	link, _ := keys.GenerateStatic(rand.Reader)
	onion, _ := keys.GenerateStatic(rand.Reader)
	for _, tc := range []struct {
		name     string
		reach    Reach
		announce bool
	}{{"direct", Direct, true}, {"via a rendezvous", ViaRendezvous, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var network [32]byte
			rand.Read(network[:])
			port := 40000 + int(network[0])
			addr := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(port))
			var reach atomic.Int32 // Unreachable
			p, err := Start(Config{
				DHT: own, NetworkID: network, Identity: id, Port: port, Interval: time.Hour,
				Descriptor: func(now time.Time, seq uint64) (*descriptor.Descriptor, error) {
					return &descriptor.Descriptor{
						NetworkID: network, OnionKey: onion.Public(), LinkKey: link.Public(),
						ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(24 * time.Hour),
						Addresses: []netip.AddrPort{addr}, Software: "test", Published: now, Seq: seq,
					}, nil
				},
				Reach:  func() Reach { return Reach(reach.Load()) },
				Logger: zaptest.NewLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			fetch := func() (*descriptor.Descriptor, int64, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				pub := id.Public()
				v, seq, err := look.Fetch(ctx, ed25519.PublicKey(pub[:]), descriptor.Salt(network))
				if err != nil {
					return nil, 0, err
				}
				d, err := descriptor.Parse(v)
				return d, seq, err
			}

			waitFor(t, "a first publication", func() bool { ok, _ := p.Stats(); return ok >= 1 })
			if _, _, err := fetch(); !errors.Is(err, dht.ErrNotFound) {
				t.Fatalf("an unreachable relay's descriptor: %v, want none", err)
			}

			reach.Store(int32(tc.reach))
			p.Kick()
			waitFor(t, "a second publication", func() bool { ok, _ := p.Stats(); return ok >= 2 })
			d, seq, err := fetch()
			if err != nil || d.Identity != id.Public() || int64(d.Seq) != seq || d.NetworkID != network {
				t.Fatalf("descriptor on the DHT: %+v, seq %d, %v", d, seq, err)
			}
			p.Kick()
			waitFor(t, "a third publication", func() bool { ok, _ := p.Stats(); return ok >= 3 })
			if d2, _, err := fetch(); err != nil || d2.Seq <= d.Seq {
				t.Fatalf("after seq %d, the next publication has %+v (%v)", d.Seq, d2, err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			peers, err := look.FindPeers(ctx, dht.NetworkInfohash(network))
			announced := slices.ContainsFunc(peers, func(ap netip.AddrPort) bool { return int(ap.Port()) == port })
			if announced != tc.announce {
				t.Fatalf("announced %v (peers %v, %v), want %v", announced, peers, err, tc.announce)
			}
			if _, failed := p.Stats(); failed != 0 {
				t.Fatalf("%d publications failed", failed)
			}
		})
	}
}

// TestFirstPublicationWaits: the first publication waits for Settled.
func TestFirstPublicationWaits(t *testing.T) {
	boot := dhtNode(t)
	own := dhtNode(t, boot.Addr())
	id, _ := keys.GenerateIdentity(rand.Reader)
	var settled, asked atomic.Bool
	p, err := Start(Config{
		DHT: own, Identity: id, Port: 7000, Interval: time.Hour,
		Descriptor: func(time.Time, uint64) (*descriptor.Descriptor, error) {
			return nil, errors.New("not needed")
		},
		Reach:   func() Reach { asked.Store(true); return Unreachable },
		Settled: settled.Load,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	time.Sleep(300 * time.Millisecond)
	if asked.Load() {
		t.Fatal("published before NAT detection settled")
	}
	settled.Store(true)
	waitFor(t, "a publication once settled", asked.Load)
}
