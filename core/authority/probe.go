package authority

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/netdir"
)

// rttProbeSize is the size of the single probe cell whose round trip is the relay's latency.
const rttProbeSize = 64

// probeTries is how many times a lost CREATE or probe cell is sent within one probe's timeout: a
// datagram lost on the way is not a failed relay.
const probeTries = 3

// prober measures relays through one-hop circuits of its own client. Circuits are built and timed
// concurrently, but bursts run one at a time: concurrent bursts would share this host's bandwidth
// (each relay would be measured against the others) and overflow its socket buffer, losing cells of
// the other probes.
type prober struct {
	c                *client.Client
	timeout          time.Duration
	burst, burstSize int

	bursting sync.Mutex
}

// probe builds a one-hop circuit to r, times the build and one probe cell's round trip (then calls
// answered), and then, with a timeout of its own once no other burst runs, measures a burst's
// throughput. Any failure, or a timeout, makes the probe failed; err says why.
func (p *prober) probe(ctx context.Context, r netdir.Relay, answered func()) (Probe, error) {
	start := time.Now()
	res := Probe{At: time.Unix(start.Unix(), 0)}
	bctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	circ, err := p.c.Build(bctx, []netdir.Relay{r})
	if err != nil {
		return res, err
	}
	defer circ.Close()
	res.Build = time.Since(start)
	for try := 1; ; try++ {
		tctx, tcancel := context.WithTimeout(bctx, p.timeout/probeTries)
		one, err := circ.Probe(tctx, 1, 1, rttProbeSize)
		tcancel()
		if err == nil {
			res.RTT = one.RTT
			answered()
			break
		}
		if try == probeTries || bctx.Err() != nil {
			return res, fmt.Errorf("probe cell: %w", err)
		}
	}

	p.bursting.Lock()
	defer p.bursting.Unlock()
	ctx, cancel = context.WithTimeout(ctx, p.timeout)
	defer cancel()
	burst, err := circ.Probe(ctx, 1, p.burst, p.burstSize)
	if err != nil {
		return res, fmt.Errorf("probe burst: %w", err)
	}
	if burst.BytesPerSecond <= 0 {
		return res, errors.New("probe burst: nothing measured")
	}
	res.Bandwidth, res.OK = burst.BytesPerSecond, true
	return res, nil
}
