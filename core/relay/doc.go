// Package relay is the relay engine: it accepts links, answers CREATE with the circuit handshake,
// removes its onion layer from forward cells and adds it to backward cells, extends circuits on the
// client's request, and tears circuits down with DESTROY. The same engine runs in-process in tests and
// inside the exit-node binary; an exit plugs in through Config.Exit.
//
// A cell's path through a relay: link.Node reads and decrypts a datagram and calls onMessage (relay.go);
// the cell header picks the circuit in the sharded table (table.go); forward cells are peeled into a
// pooled buffer (forward.go) and queued on the next link's fair scheduler (core/sched), backward cells
// are wrapped in place and queued towards the client.
package relay
