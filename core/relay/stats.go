package relay

import (
	"sync/atomic"

	"github.com/meshvpn/meshvpn/crypto/onion"
)

// Stats is a snapshot of a relay's counters.
type Stats struct {
	CellsIn, CellsOut   uint64
	CircuitsCreated     uint64
	CircuitsDestroyed   uint64
	CircuitsOpen        int
	Extends, ExtendFail uint64
	ExitData            uint64 // DATA messages handed to the exit

	// Drops, by reason.
	DropBadMAC         uint64 // a layer failed authentication (tampering): the circuit is torn down
	DropReplay         uint64 // a layer counter seen before or too old
	DropMalformed      uint64 // bad cell header, size, padding, relay message or handshake
	DropUnknownCircuit uint64 // a cell for a circuit id this relay does not have on that link
	DropProtocol       uint64 // a valid cell at the wrong time (CREATE on a used id, EXTEND twice, ...)
	DropRateLimited    uint64 // CREATE refused because the handshake queue is full
	DropLinkCircuits   uint64 // CREATE refused because its link has Config.MaxCircuitsPerLink circuits open
	DropCreateRate     uint64 // CREATE refused because its link opens circuits faster than Config.CreateRate
	DropQueueFull      uint64 // a cell dropped by an outgoing link's fair scheduler
	DropMemory         uint64 // a cell dropped because the relay's queues hold Config.MaxQueueMemory

	// CircuitsReclaimed counts circuits destroyed because the relay's queues reached
	// Config.MaxQueueMemory: those whose oldest queued cell had waited longest.
	CircuitsReclaimed uint64
	DropNoExit        uint64 // DATA at the last hop of a relay that is not an exit
	DropOther         uint64 // a datagram that is neither a link packet nor taken by a handler of the socket (the link layer's DropOther)
	DropDestroyReason uint64 // a DESTROY whose reason byte is none of the known ones (the circuit still goes)

	Whois, WhoisLimited uint64 // whois questions answered, and not answered for the rate limit

	// KeyRatchets counts backward layer keys replaced on schedule (Config.RatchetEvery), KeysErased
	// the forward generations erased a window after a client's ratchet.
	KeyRatchets, KeysErased uint64

	// ExitGaps counts the holes in the forward layer counters of the circuits that end at this relay:
	// cells the client sent that never arrived (Missing), lost on a link or dropped by a hop before
	// this one, which a colluding hop can use to mark a flow (docs/threat-model.md).
	ExitGaps onion.Gaps
}

type counters struct {
	cellsIn, cellsOut                       atomic.Uint64
	created, destroyed                      atomic.Uint64
	extends, extendFail, exitData           atomic.Uint64
	badMAC, replay, malformed, unknown      atomic.Uint64
	protocol, rateLimited, queueFull, noEx  atomic.Uint64
	whois, whoisLimited                     atomic.Uint64
	ratchets, keysErased                    atomic.Uint64
	destroyReason, linkCircuits, createRate atomic.Uint64
	memoryFull, memoryKilled                atomic.Uint64
	gapSkipped, gapLate                     atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		CellsIn: c.cellsIn.Load(), CellsOut: c.cellsOut.Load(),
		CircuitsCreated: c.created.Load(), CircuitsDestroyed: c.destroyed.Load(),
		Extends: c.extends.Load(), ExtendFail: c.extendFail.Load(), ExitData: c.exitData.Load(),
		DropBadMAC: c.badMAC.Load(), DropReplay: c.replay.Load(), DropMalformed: c.malformed.Load(),
		DropUnknownCircuit: c.unknown.Load(), DropProtocol: c.protocol.Load(),
		DropRateLimited: c.rateLimited.Load(), DropQueueFull: c.queueFull.Load(), DropNoExit: c.noEx.Load(),
		DropLinkCircuits: c.linkCircuits.Load(), DropCreateRate: c.createRate.Load(),
		DropMemory: c.memoryFull.Load(), CircuitsReclaimed: c.memoryKilled.Load(),
		DropDestroyReason: c.destroyReason.Load(), Whois: c.whois.Load(), WhoisLimited: c.whoisLimited.Load(),
		KeyRatchets: c.ratchets.Load(), KeysErased: c.keysErased.Load(),
		ExitGaps: onion.Gaps{Skipped: c.gapSkipped.Load(), Late: c.gapLate.Load()},
	}
}
