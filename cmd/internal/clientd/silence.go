package clientd

import (
	"context"
	"time"

	"github.com/meshvpn/meshvpn/core/client"
	"github.com/meshvpn/meshvpn/core/netdir"
)

// silentAfter is how long a circuit carries the client's data away with nothing back before status
// calls it silent. Programs wait longer for answers all the time (a request to a slow server), but
// not with every connection at once; the probes tell which.
const silentAfter = 3 * time.Second

// probeWait bounds the wait for each hop's probe echo when status looks for where a circuit went
// silent.
const probeWait = 500 * time.Millisecond

// silence reports the circuit in use as silent, with (if probe) the first hop that does not answer a
// probe, or nil when it carries traffic back (or carries none either way).
func (d *Daemon) silence(now time.Time, path []netdir.Relay, probe bool) *Silence {
	c, ok := d.mgr.Current().(*client.Circuit)
	if !ok {
		return nil
	}
	since := c.Unanswered()
	if since.IsZero() || now.Sub(since) < silentAfter {
		return nil
	}
	s := &Silence{Since: since, Seconds: now.Sub(since).Seconds()}
	if !probe {
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(path))*probeWait)
	defer cancel()
	if hop := c.FirstSilentHop(ctx, probeWait); hop > 0 && hop <= len(path) {
		s.Hop, s.HopName = roleOf(hop-1, len(path)), path[hop-1].Name
	}
	return s
}

// roleOf names the hop at index i of an n-hop circuit: guard, middle or exit.
func roleOf(i, n int) string {
	switch i {
	case 0:
		return "guard"
	case n - 1:
		return "exit"
	}
	return "middle"
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
