package relay

import (
	"errors"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// onRelay moves one RELAY cell along its circuit: forward cells lose this hop's layer, backward cells
// gain it.
func (r *Relay) onRelay(l Link, id cell.ID, body []byte) {
	c := r.tab.get(end{l, id})
	if c == nil {
		r.stats.unknown.Add(1)
		return
	}
	c.touch()
	if c.prev.link == l && c.prev.id == id {
		r.forward(c, body)
		return
	}
	r.backward(c, body)
}

func (r *Relay) forward(c *circuit, body []byte) {
	buf := pool.Get()
	dst := buf[cell.HeaderLen : cell.HeaderLen+len(body)]
	next := c.next.Load()
	c.fwdMu.Lock()
	disp, payload, err := c.hop.Peel(dst, body, next != nil)
	if err == nil && next == nil {
		r.countGaps(c)
	}
	c.fwdMu.Unlock()
	if err != nil {
		pool.Put(buf)
		r.layerError(c, err)
		return
	}
	if disp == onion.Onward {
		cell.PutHeader(buf, cell.Header{Circuit: next.id, Command: cell.Relay})
		r.enqueue(next.link, c, buf[:cell.HeaderLen+len(body)])
		return
	}
	r.handleMsg(c, payload)
	pool.Put(buf)
}

func (r *Relay) backward(c *circuit, body []byte) {
	buf := pool.Get()
	msg := buf[:cell.HeaderLen+len(body)]
	copy(msg[cell.HeaderLen:], body)
	c.bwdMu.Lock()
	err := c.hop.Wrap(msg[cell.HeaderLen:])
	c.bwdMu.Unlock()
	if err != nil {
		pool.Put(buf)
		r.layerError(c, err)
		return
	}
	cell.PutHeader(msg, cell.Header{Circuit: c.prev.id, Command: cell.Relay})
	r.enqueue(c.prev.link, c, msg)
}

// layerError counts a cell the layer crypto refused. A forged or modified cell means a hop or a link is
// hostile or broken, so the circuit goes (design: tampering tears the circuit down); a replay or a
// malformed cell is only dropped.
func (r *Relay) layerError(c *circuit, err error) {
	switch {
	case errors.Is(err, onion.ErrAuth):
		r.stats.badMAC.Add(1)
		r.destroy(c, cell.ReasonAuth, nil)
	case errors.Is(err, onion.ErrReplay):
		r.stats.replay.Add(1)
	default:
		r.stats.malformed.Add(1)
	}
}

// handleMsg acts on a relay message addressed to this hop.
func (r *Relay) handleMsg(c *circuit, payload []byte) {
	t, data, err := cell.ParseMsg(payload)
	if err != nil {
		r.stats.malformed.Add(1)
		return
	}
	switch t {
	case cell.MsgData, cell.MsgBegin:
		if r.cfg.Exit == nil || c.next.Load() != nil {
			r.stats.noEx.Add(1)
			return
		}
		if t == cell.MsgData {
			r.stats.exitData.Add(1)
		}
		r.cfg.Exit(&c.exit, t, data)
	case cell.MsgExtend:
		r.onExtend(c, data)
	case cell.MsgProbe:
		_ = r.originate(c, cell.MsgProbeReply, data)
	case cell.MsgDrop:
	default:
		r.stats.protocol.Add(1)
	}
}

// originate sends a relay message from this hop back to the client.
func (r *Relay) originate(c *circuit, t cell.MsgType, data []byte) error {
	n, ok := r.cfg.Sizes.For(cell.MsgHeaderLen+len(data), c.depth)
	if !ok {
		return errTooLarge
	}
	buf := pool.Get()
	msg := buf[:cell.HeaderLen+n]
	body := msg[cell.HeaderLen:]
	if err := cell.PutMsg(body[:c.hop.PayloadLen(n)], t, data); err != nil {
		pool.Put(buf)
		return err
	}
	c.bwdMu.Lock()
	err := c.hop.Originate(body)
	c.bwdMu.Unlock()
	if err != nil {
		pool.Put(buf)
		return err
	}
	cell.PutHeader(msg, cell.Header{Circuit: c.prev.id, Command: cell.Relay})
	r.enqueue(c.prev.link, c, msg)
	return nil
}

var errTooLarge = errors.New("relay: datagram larger than a full cell carries")
