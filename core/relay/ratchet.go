package relay

import (
	"time"

	"go.uber.org/zap"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// ratchetLoop is the relay's side of the scheduled layer-key ratchet (crypto/onion): every tick, each
// circuit's backward key moves to its next generation when due, with a nudge that takes the client
// along, and forward generations kept for cells delayed past a client's ratchet are erased once the
// window is over. One sweep for every circuit rather than a timer each, and no clock on the per-cell
// path.
func (r *Relay) ratchetLoop() {
	defer r.wg.Done()
	t := time.NewTicker(onion.RatchetTick(r.cfg.RatchetEvery))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.ratchet(now)
		}
	}
}

// ratchet runs one sweep of the scheduled ratchet at now.
func (r *Relay) ratchet(now time.Time) {
	window := onion.RatchetWindow(r.cfg.RatchetEvery)
	r.tab.each(func(c *circuit) {
		if c.dead.Load() {
			return
		}
		c.fwdMu.Lock()
		erased := c.hop.Expire(now, window)
		c.fwdMu.Unlock()
		if erased {
			r.stats.keysErased.Add(1)
		}

		var nudge []byte
		c.bwdMu.Lock()
		moved, err := c.hop.Ratchet(now, r.cfg.RatchetEvery)
		if moved {
			nudge, err = r.nudge(c)
		}
		c.bwdMu.Unlock()
		if err != nil {
			// Only key derivation can fail here, never in practice; a circuit whose key cannot move
			// on must not keep it.
			r.cfg.Logger.Warn("layer key ratchet failed", zap.Error(err))
			r.destroy(c, cell.ReasonInternal, nil)
			return
		}
		if moved {
			r.stats.ratchets.Add(1)
			r.enqueue(c.prev.link, c, nudge)
		}
	})
}

// nudge seals an empty DROP message from this hop under its new backward key, which makes the client
// follow the ratchet (onion.Hop.Nudge). The caller holds c.bwdMu.
func (r *Relay) nudge(c *circuit) ([]byte, error) {
	n := r.cfg.Sizes[0]
	buf := pool.Get()
	msg := buf[:cell.HeaderLen+n]
	body := msg[cell.HeaderLen:]
	if err := cell.PutMsg(body[:c.hop.PayloadLen(n)], cell.MsgDrop, nil); err != nil {
		pool.Put(buf)
		return nil, err
	}
	if err := c.hop.Nudge(body); err != nil {
		pool.Put(buf)
		return nil, err
	}
	cell.PutHeader(msg, cell.Header{Circuit: c.prev.id, Command: cell.Relay})
	return msg, nil
}
