// Package core holds circuits. Its subpackages:
//
//   - cell: the wire format of circuit cells and relay messages;
//   - relay: the relay engine (circuit table, forwarding, extension, teardown);
//   - client: the client side (telescoping build, sending and receiving datagrams);
//   - sched: the fair, bounded per-link output scheduler relays queue cells on.
//
// Path selection, the client engine that moves packets between a TUN device and circuits, and health
// monitoring arrive with later issues. docs/architecture.md follows a cell through these packages.
package core
