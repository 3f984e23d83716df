package relay

import (
	"context"
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/network/link"
)

// onExtend starts extending the circuit to the relay the client names. Only the last hop may extend,
// once.
func (r *Relay) onExtend(c *circuit, data []byte) {
	e, err := cell.DecodeExtend(data)
	if err != nil {
		r.stats.malformed.Add(1)
		_ = r.originate(c, cell.MsgExtendFailed, []byte{byte(cell.ReasonProtocol)})
		return
	}
	c.mu.Lock()
	busy := c.extending || c.next.Load() != nil
	c.extending = true
	c.mu.Unlock()
	if busy || e.Identity == r.cfg.Identity.Public() {
		r.stats.protocol.Add(1)
		_ = r.originate(c, cell.MsgExtendFailed, []byte{byte(cell.ReasonProtocol)})
		return
	}
	r.stats.extends.Add(1)
	create := make([]byte, r.cfg.Sizes[0])
	if err := (&cell.CreateBody{Depth: uint8(c.depth + 1), Handshake: e.Handshake}).Encode(create); err != nil {
		r.extendFailed(c, cell.ReasonInternal)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ExtendTimeout)
		defer cancel()
		var l *link.Link
		var err error
		if e.RendezvousAddr.IsValid() {
			l, err = r.node.DialVia(ctx, e.LinkKey, link.Rendezvous{Key: e.RendezvousKey, Addr: e.RendezvousAddr})
		} else {
			l, err = r.node.Dial(ctx, e.Addr, e.LinkKey)
		}
		if err != nil {
			r.extendFailed(c, cell.ReasonUnreachable)
			return
		}
		id := r.newID(l, c.prev.id)
		pending := end{l, id}
		c.mu.Lock()
		if c.dead.Load() || !r.tab.add(pending, c) {
			c.mu.Unlock()
			return
		}
		c.pending = &pending
		c.timer = time.AfterFunc(r.cfg.ExtendTimeout, func() { r.extendTimedOut(c, pending) })
		c.mu.Unlock()
		r.sendControl(l, id, cell.Create, func(b []byte) { copy(b, create) })
	}()
}

// onCreated completes a pending extension: the next hop is in place and the client gets EXTENDED.
func (r *Relay) onCreated(l Link, id cell.ID, body []byte) {
	e := end{l, id}
	c := r.tab.get(e)
	if c == nil {
		r.stats.unknown.Add(1)
		return
	}
	reply, err := cell.DecodeCreated(body)
	if err != nil {
		r.stats.malformed.Add(1)
		return
	}
	c.mu.Lock()
	if c.pending == nil || *c.pending != e {
		c.mu.Unlock()
		r.stats.protocol.Add(1)
		return
	}
	c.pending = nil
	c.timer.Stop()
	next := e // a copy, so that only a CREATED that completes an extension costs an allocation
	c.next.Store(&next)
	c.mu.Unlock()
	_ = r.originate(c, cell.MsgExtended, reply)
}

func (r *Relay) extendTimedOut(c *circuit, pending end) {
	c.mu.Lock()
	if c.pending == nil || *c.pending != pending {
		c.mu.Unlock()
		return
	}
	c.pending = nil
	c.mu.Unlock()
	r.tab.remove(pending, c)
	// Away from the client, a DESTROY never says why (see destroy).
	r.sendControl(pending.link, pending.id, cell.Destroy, func(b []byte) { cell.EncodeDestroy(b, cell.ReasonDestroyed) })
	r.extendFailed(c, cell.ReasonTimeout)
}

// extendFailed tells the client, which may try another relay on the same circuit.
func (r *Relay) extendFailed(c *circuit, reason cell.DestroyReason) {
	r.stats.extendFail.Add(1)
	c.mu.Lock()
	c.extending = false
	c.mu.Unlock()
	_ = r.originate(c, cell.MsgExtendFailed, []byte{byte(reason)})
}
