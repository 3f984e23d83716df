package dht

import (
	"net"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2"
)

// The library hands out only nodes that have answered it ("good" under BEP 5), and a node that only
// queried us has not. Its table maintainer pings such nodes once a minute, so a fresh bootstrap node
// tells its first joiners about no one for up to a minute. The introducer closes that gap: the first
// query from a node we have not pinged lately makes us ping it at once, and its answer makes it good.
const (
	// introduceEvery matches BEP 5's 15 minutes, after which a node that answered is questionable again.
	introduceEvery = 15 * time.Minute
	// maxIntroduced bounds the addresses remembered; a flood of spoofed sources only forgets sooner.
	maxIntroduced = 4096
	// maxIntroducing bounds the pings in flight; queries beyond it are introduced on a later query.
	maxIntroducing = 64
)

// introducer decides which querying nodes to ping.
type introducer struct {
	now   func() time.Time
	slots chan struct{}

	mu     sync.Mutex
	pinged map[string]time.Time
}

func newIntroducer(now func() time.Time) *introducer {
	return &introducer{now: now, slots: make(chan struct{}, maxIntroducing), pinged: make(map[string]time.Time)}
}

// claim reports whether addr should be pinged now, and if so takes a slot that release returns.
func (in *introducer) claim(addr string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()
	if at, ok := in.pinged[addr]; ok && now.Sub(at) < introduceEvery {
		return false
	}
	select {
	case in.slots <- struct{}{}:
	default:
		return false
	}
	if len(in.pinged) >= maxIntroduced {
		for a, at := range in.pinged {
			if now.Sub(at) >= introduceEvery {
				delete(in.pinged, a)
			}
		}
		if len(in.pinged) >= maxIntroduced {
			clear(in.pinged)
		}
	}
	in.pinged[addr] = now
	return true
}

func (in *introducer) release() { <-in.slots }

// introduce pings source if it has not been pinged lately, so that its answer makes it good. It is
// called on the library's read loop, so the ping goes out on a goroutine.
func (n *Node) introduce(source net.Addr) {
	if !n.intro.claim(source.String()) {
		return
	}
	if !n.goTracked(func() {
		defer n.intro.release()
		<-n.started
		res := n.srv.Query(n.ctx, dht.NewAddr(source), "ping", dht.QueryInput{})
		if res.ToError() == nil {
			n.stats.introduced.Add(1)
		}
	}) {
		n.intro.release()
	}
}
