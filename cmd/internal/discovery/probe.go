package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/relay"
)

// rttProbeSize is the size of the single probe cell whose round trip is the relay's latency.
const rttProbeSize = 64

// prober measures relays through one-hop circuits of its own client.
type prober struct {
	c                *client.Client
	timeout          time.Duration
	burst, burstSize int
}

// probe builds a one-hop circuit to r, times the build and one probe cell's round trip, and measures
// a burst's throughput. Any failure, or a timeout, makes the probe failed; err says why.
func (p *prober) probe(ctx context.Context, r relay.Info) (Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	res := Probe{At: time.Unix(start.Unix(), 0)}
	circ, err := p.c.Build(ctx, []relay.Info{r})
	if err != nil {
		return res, err
	}
	defer circ.Close()
	res.Build = time.Since(start)
	one, err := circ.Probe(ctx, 1, 1, rttProbeSize)
	if err != nil {
		return res, fmt.Errorf("probe cell: %w", err)
	}
	res.RTT = one.RTT
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
