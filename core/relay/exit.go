package relay

import "github.com/meshvpn/meshvpn/core/cell"

// ExitCircuit is the exit's handle on a circuit that ends at this relay: it sends datagrams back to the
// client and tells when the circuit is gone.
type ExitCircuit struct {
	r *Relay
	c *circuit
}

// Send returns one datagram to the client through the circuit.
func (e *ExitCircuit) Send(data []byte) error { return e.SendMsg(cell.MsgData, data) }

// SendMsg returns one relay message to the client through the circuit.
func (e *ExitCircuit) SendMsg(t cell.MsgType, data []byte) error {
	if e.c.dead.Load() {
		return &cell.Error{Reason: cell.ReasonNone}
	}
	return e.r.originate(e.c, t, data)
}

// ID returns a number that identifies the circuit at this relay (never sent anywhere).
func (e *ExitCircuit) ID() uint64 { return e.c.seq }

// Binding returns the secret of this circuit's handshake that only the client and this relay know:
// what an exit session credential is bound to (crypto/ticket).
func (e *ExitCircuit) Binding() [32]byte { return e.c.binding }

// Done is closed when the circuit is destroyed.
func (e *ExitCircuit) Done() <-chan struct{} { return e.c.done }

// MaxData returns the largest datagram Send carries on this circuit.
func (e *ExitCircuit) MaxData() int {
	return cell.MaxData(e.c.hop.PayloadLen(e.r.cfg.Sizes[len(e.r.cfg.Sizes)-1]))
}
