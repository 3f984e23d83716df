package relay

import (
	crand "crypto/rand"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/crypto/onion"
)

// Garbage costs the relay a counter and nothing else: neither a datagram that is no link packet nor a
// bad cell from a neighbour allocates, so a flood of them cannot make the relay's garbage collector work.
func TestGarbageCostsNoAllocation(t *testing.T) {
	r := newTestRelay(t, Config{NetworkID: [32]byte{1}})
	l, next := newFakeLink(false), newFakeLink(false)
	c, keys := middleCircuit(t, r, l, next, 1)
	replayed := forwardCell(t, c, keys)
	r.onMessage(l, append([]byte(nil), replayed...))

	small := cell.HeaderLen + onion.DefaultSizes[0]
	msg := func(id cell.ID, cmd cell.Command, n int) []byte {
		b := make([]byte, n)
		crand.Read(b[cell.HeaderLen:])
		cell.PutHeader(b, cell.Header{Circuit: id, Command: cmd})
		return b
	}
	garbage := map[string][]byte{
		"empty":                   {},
		"short":                   {1, 2, 3},
		"unknown command":         msg(9, 77, small),
		"circuit id 0":            msg(0, cell.Relay, small),
		"no size class":           msg(9, cell.Relay, small+1),
		"relay, unknown circuit":  msg(9, cell.Relay, small),
		"created, unknown":        msg(9, cell.Created, small),
		"destroy, unknown":        msg(9, cell.Destroy, small),
		"create, peer's id space": msg(cell.ID(5)|cell.IDBit(r.linkID, l.Peer()), cell.Create, small),
		"create on a used id":     msg(c.prev.id, cell.Create, small),
		"replayed relay cell":     replayed,
		"padding":                 msg(0, cell.Padding, small),
	}
	for name, g := range garbage {
		if a := testing.AllocsPerRun(200, func() { r.onMessage(l, g) }); a != 0 {
			t.Errorf("%s: %v allocations per cell", name, a)
		}
	}
	if c.dead.Load() {
		t.Fatal("garbage tore the circuit down")
	}
	junk := make([]byte, 1200)
	crand.Read(junk)
	from := netip.MustParseAddrPort("192.0.2.1:4000")
	if a := testing.AllocsPerRun(200, func() { r.onWhois(junk, from) }); a != 0 {
		t.Errorf("a datagram that is no link packet: %v allocations", a)
	}
	if s := r.Stats(); s.DropMalformed == 0 || s.DropUnknownCircuit == 0 || s.DropProtocol == 0 || s.DropReplay == 0 {
		t.Errorf("stats %+v: every kind of garbage should be counted", s)
	}
}
