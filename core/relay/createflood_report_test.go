package relay_test

import (
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/crypto/ntor"
	"github.com/meshvpn/meshvpn/crypto/onion"
	"github.com/meshvpn/meshvpn/network/link"
)

func loopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c
}

func startRelay(t *testing.T, exit func(*relay.ExitCircuit, cell.MsgType, []byte)) *relay.Relay {
	t.Helper()
	id, _ := keys.GenerateIdentity(crand.Reader)
	ok, _ := keys.GenerateStatic(crand.Reader)
	node := newNode(t)
	r, err := relay.New(relay.Config{Node: node, Identity: id, OnionKeys: []*keys.Static{ok}, Exit: exit})
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

// newNode makes a link node, not started, on a loopback socket with a fresh link key.
func newNode(t *testing.T) *link.Node {
	t.Helper()
	lk, _ := keys.GenerateStatic(crand.Reader)
	node, err := link.New(link.Config{Conn: loopback(t), Static: lk})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// createFlooder is a client that opens circuits at a relay as fast as the relay answers: it keeps
// window CREATEs outstanding on one link, sending the next as soon as one is answered (CREATED or a
// refusal), with a full handshake message each time.
type createFlooder struct {
	node     *link.Node
	pub      keys.StaticPublic
	l        *link.Link
	create   []byte
	answered chan struct{}
	sent     atomic.Uint64
}

func newCreateFlooder(t *testing.T, target netdir.Relay) *createFlooder {
	t.Helper()
	static, _ := keys.GenerateStatic(crand.Reader)
	f := &createFlooder{answered: make(chan struct{}, 1024), pub: static.Public()}
	node, err := link.Listen(link.Config{Conn: loopback(t), Static: static, OnMessage: func(_ *link.Link, msg []byte) {
		if len(msg) > cell.HeaderLen && (cell.Command(msg[4]) == cell.Created || cell.Command(msg[4]) == cell.Destroy) {
			select {
			case f.answered <- struct{}{}:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	f.node = node
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if f.l, err = node.Dial(ctx, target.Addr, target.LinkKey); err != nil {
		t.Fatal(err)
	}
	_, hs, err := ntor.NewClient(crand.Reader, target.Identity, target.Onion, onion.DefaultOffer())
	if err != nil {
		t.Fatal(err)
	}
	f.create = make([]byte, cell.HeaderLen+onion.DefaultSizes[0])
	if err := (&cell.CreateBody{Depth: 1, Handshake: hs}).Encode(f.create[cell.HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return f
}

// run floods until stop is closed.
func (f *createFlooder) run(stop <-chan struct{}) {
	const window = 64
	bit := cell.IDBit(f.pub, f.l.Peer())
	msg := make([]byte, len(f.create))
	copy(msg, f.create)
	id := uint32(0)
	send := func() {
		id++
		cell.PutHeader(msg, cell.Header{Circuit: cell.ID(id&^(1<<31)) | bit, Command: cell.Create})
		if f.l.Send(msg) == nil {
			f.sent.Add(1)
		}
	}
	for range window {
		send()
	}
	for {
		select {
		case <-stop:
			return
		case <-f.answered:
			send()
		case <-time.After(50 * time.Millisecond): // answers lost on a full socket: refill the window
			for range window {
				send()
			}
		}
	}
}

// TestReportCreateFlood measures a circuit's throughput through a relay while another client opens
// circuits at that relay as fast as it answers, against the same circuit's throughput without the
// flood, in alternating rounds of one run (median of each).
func TestReportCreateFlood(t *testing.T) {
	if f := flag.Lookup("report"); f == nil || f.Value.String() != "true" {
		t.Skip("run with -report (make bench)")
	}
	var delivered atomic.Uint64
	guard := startRelay(t, nil)
	exit := startRelay(t, func(_ *relay.ExitCircuit, typ cell.MsgType, data []byte) {
		if typ == cell.MsgData {
			delivered.Add(uint64(len(data)))
		}
	})
	node := newNode(t)
	cl, err := client.New(client.Config{Node: node})
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	circ, err := cl.Build(ctx, []netdir.Relay{guard.Info(), exit.Info()})
	if err != nil {
		t.Fatal(err)
	}
	flooder := newCreateFlooder(t, guard.Info())

	const round = 2 * time.Second
	batch := make([][]byte, 32)
	for i := range batch {
		batch[i] = make([]byte, circ.MaxData())
	}
	measure := func() float64 {
		start, before := time.Now(), delivered.Load()
		for time.Since(start) < round {
			_, _ = circ.SendBatch(batch)
			time.Sleep(100 * time.Microsecond) // a sender that outpaces the path only measures drops
		}
		time.Sleep(50 * time.Millisecond)
		return float64(delivered.Load()-before) * 8 / time.Since(start).Seconds() / 1e6
	}
	var quiet, flooded []float64
	var creates, refused uint64
	for range 3 {
		quiet = append(quiet, measure())
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); flooder.run(stop) }()
		sentBefore, statsBefore := flooder.sent.Load(), guard.Stats()
		flooded = append(flooded, measure())
		close(stop)
		wg.Wait()
		s := guard.Stats()
		creates += flooder.sent.Load() - sentBefore
		refused += s.DropCreateRate - statsBefore.DropCreateRate
		time.Sleep(200 * time.Millisecond)
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	q, fl := med(quiet), med(flooded)
	ratio := fl / q
	verdict := "met"
	if ratio < 0.8 {
		verdict = "MISSED"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "a circuit through a relay that another client floods with CREATEs (loopback, same process)\t Mbit/s\t vs quiet\t limit\t\n")
	fmt.Fprintf(w, "quiet (median of 3 rounds of %v)\t %.0f\t \t \t\n", round, q)
	fmt.Fprintf(w, "during the flood (%.0f CREATEs/s sent, %.0f%% refused for the link's rate)\t %.0f\t %.0f%%\t ≥80%% %s\t\n",
		float64(creates)/(3*round.Seconds()), 100*float64(refused)/float64(max(creates, 1)), fl, 100*ratio, verdict)
	w.Flush()
}
