package relay

import (
	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/core/relay/internal/hook"
)

// A hostile relay for tests is an honest one with a tamper function installed through
// core/relay/relaytest; Config has no way to ask for one.
func init() {
	hook.SetTamper = func(r any, t hook.Tamper) {
		if t == nil {
			r.(*Relay).tamper.Store(nil)
			return
		}
		r.(*Relay).tamper.Store(&t)
	}
}

// enqueueTampered queues what the tamper function makes of b instead of b.
func (r *Relay) enqueueTampered(t hook.Tamper, l Link, c *circuit, b []byte) {
	out := t(l != c.prev.link, b, func(typ cell.MsgType, data []byte) error { return r.originate(c, typ, data) })
	for _, m := range out {
		nb := pool.Get()
		n := copy(nb, m)
		r.enqueueOne(l, c, nb[:n])
	}
	pool.Put(b)
}
