package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
)

// maxProbes bounds the probes of one Probe call, and the echoes held for it.
const maxProbes = 256

// probeEcho is one echoed probe: which hop answered, the probe's number, when it came back.
type probeEcho struct {
	hop   int
	seq   uint32
	nonce [8]byte // the burst's, so that a late echo of an earlier burst is not counted
	at    time.Time
}

// ProbeResult is what a burst of probes to one hop measured.
type ProbeResult struct {
	Sent, Echoed int
	RTT          time.Duration // of the first probe: the hop's round-trip time with an idle circuit
	// BytesPerSecond is the probe bytes that went to the hop and back, over the time from the first
	// send to the last echo: a lower bound of what the path to the hop carries both ways.
	BytesPerSecond float64
}

// Probe sends count probes of size bytes at once to hop (1-based) and waits for their echoes until
// ctx ends (an echo that does not come is lost: Echoed counts those that did). It measures a hop's
// latency and, with a burst of full cells, the throughput of the path to it: the discovery
// authorities' measurements and the client's health checks.
func (circ *Circuit) Probe(ctx context.Context, hop, count, size int) (ProbeResult, error) {
	if hop < 1 || hop > len(circ.path) {
		return ProbeResult{}, fmt.Errorf("client: probe hop %d of a %d-hop circuit", hop, len(circ.path))
	}
	if count < 1 || count > maxProbes {
		return ProbeResult{}, fmt.Errorf("client: %d probes, want 1 to %d", count, maxProbes)
	}
	size = max(size, 12)
	circ.probe.Lock()
	defer circ.probe.Unlock()
	for len(circ.probes) > 0 { // echoes of an earlier, timed-out burst
		<-circ.probes
	}
	var nonce [8]byte
	if _, err := circ.c.cfg.Rand.Read(nonce[:]); err != nil {
		return ProbeResult{}, err
	}
	data := make([]byte, size)
	copy(data[4:], nonce[:])
	start := time.Now()
	res := ProbeResult{}
	for i := range count {
		binary.BigEndian.PutUint32(data, uint32(i))
		if err := circ.sendMsg(hop, cell.MsgProbe, data); err != nil {
			if res.Sent == 0 {
				return res, err
			}
			break
		}
		res.Sent++
	}
	var last time.Time
	for res.Echoed < res.Sent {
		select {
		case e := <-circ.probes:
			if e.hop != hop || e.nonce != nonce || e.seq >= uint32(res.Sent) {
				continue
			}
			if e.seq == 0 {
				res.RTT = e.at.Sub(start)
			}
			res.Echoed++
			last = e.at
		case <-circ.done:
			return res, circ.Err()
		case <-ctx.Done():
			if res.Echoed == 0 {
				return res, fmt.Errorf("client: no probe echo from hop %d: %w", hop, ctx.Err())
			}
			return res.finish(start, last, size), nil
		}
	}
	return res.finish(start, last, size), nil
}

func (r ProbeResult) finish(start, last time.Time, size int) ProbeResult {
	if d := last.Sub(start); d > 0 {
		r.BytesPerSecond = float64(2*r.Echoed*size) / d.Seconds()
	}
	return r
}

// deliverEcho hands an echo to a waiting Probe; echoes nobody waits for are counted and dropped.
func (circ *Circuit) deliverEcho(hop int, data []byte) {
	if len(data) < 12 {
		circ.c.other.Add(1)
		return
	}
	e := probeEcho{hop: hop, seq: binary.BigEndian.Uint32(data), at: time.Now()}
	copy(e.nonce[:], data[4:12])
	select {
	case circ.probes <- e:
	default:
		circ.c.other.Add(1)
	}
}

// FirstSilentHop probes the hops in turn, guard first, one small probe each, and returns the first
// (1-based) that does not answer within wait, or 0 when every hop answers: where a circuit that
// carries nothing back has gone silent.
func (circ *Circuit) FirstSilentHop(ctx context.Context, wait time.Duration) int {
	for hop := 1; hop <= len(circ.path); hop++ {
		pctx, cancel := context.WithTimeout(ctx, wait)
		r, err := circ.Probe(pctx, hop, 1, 64)
		cancel()
		if err != nil || r.Echoed == 0 {
			return hop
		}
	}
	return 0
}
