package circmgr

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// silentCircuit is a fake circuit that has carried data away with nothing back since silent.
type silentCircuit struct {
	*fakeCircuit
	silent time.Time
}

func (c silentCircuit) Unanswered() time.Time { return c.silent }

// A circuit that went silent before it died: the reroute's outage counts from the silence, not from
// the death the client noticed later (a middle whose next hop died is only torn down after dead_after).
func TestRerouteCountsTheSilenceBeforeTheDeath(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := newFakeNet()
	silent := time.Now().Add(-27 * time.Second)
	n.silent = silent
	m, got := start(t, n, "")
	defer m.Close()
	first := await(t, got)
	if _, ok := m.Current().(silentCircuit); !ok {
		t.Fatalf("Current returned %T", m.Current())
	}
	n.kill(first[1].Name, relays())
	await(t, got)
	waitFor(t, func() bool { return len(m.Status().Reroutes) == 1 })
	r := m.Status().Reroutes[0]
	if !r.Silent.Equal(silent) || r.Outage() < 27*time.Second || r.Gap() >= 27*time.Second {
		t.Fatalf("reroute %+v: outage %v, gap %v; want the outage from the silence 27 s before", r, r.Outage(), r.Gap())
	}
}
