package client

import (
	"time"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/core/internal/pool"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// ratchetLoop is the client's side of the scheduled layer-key ratchet (crypto/onion): every tick, each
// circuit's forward keys move to their next generation when due, with one nudge to the last hop that
// takes every hop along, and backward generations kept for cells delayed past a hop's ratchet are
// erased once the window is over.
func (c *Client) ratchetLoop() {
	defer c.wg.Done()
	t := time.NewTicker(onion.RatchetTick(c.cfg.RatchetEvery))
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.ratchet(now)
		}
	}
}

// ratchet runs one sweep of the scheduled ratchet at now.
func (c *Client) ratchet(now time.Time) {
	c.mu.Lock()
	all := make([]*Circuit, 0, len(c.circuits))
	for _, circ := range c.circuits {
		all = append(all, circ)
	}
	c.mu.Unlock()
	for _, circ := range all {
		if err := circ.ratchet(now); err != nil {
			// Only key derivation can fail, never in practice; a circuit whose keys cannot move on must
			// not keep them.
			circ.close(err, true)
		}
	}
}

func (circ *Circuit) ratchet(now time.Time) error {
	c := circ.c
	circ.bwdMu.Lock()
	erased := circ.layers.Expire(now, onion.RatchetWindow(c.cfg.RatchetEvery))
	circ.bwdMu.Unlock()
	c.keysErased.Add(uint64(erased))

	circ.fwdMu.Lock()
	defer circ.fwdMu.Unlock()
	select {
	case <-circ.done:
		return nil
	default:
	}
	moved, err := circ.layers.Ratchet(now, c.cfg.RatchetEvery)
	if err != nil || !moved {
		return err
	}
	c.ratchets.Add(1)
	return circ.nudge()
}

// nudge sends an empty DROP message to the circuit's last hop under the new forward keys, which makes
// every hop follow the ratchet (onion.Path.Nudge). The caller holds fwdMu. A nudge the link cannot send
// is lost as any cell is: the hops then follow with the next cell.
func (circ *Circuit) nudge() error {
	hop := circ.layers.Hops()
	n := circ.c.cfg.Sizes[0]
	buf := pool.Get()
	defer pool.Put(buf)
	msg := buf[:cell.HeaderLen+n]
	body := msg[cell.HeaderLen:]
	cell.PutHeader(msg, cell.Header{Circuit: circ.id, Command: cell.Relay})
	if err := cell.PutMsg(body[:onion.PayloadLen(n, hop)], cell.MsgDrop, nil); err != nil {
		return err
	}
	if err := circ.layers.Nudge(body, hop); err != nil {
		return err
	}
	circ.c.out.Add(1)
	_ = circ.link.Send(msg)
	return nil
}
