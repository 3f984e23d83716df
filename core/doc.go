// Package core holds circuits. Its subpackages:
//
//   - cell: the wire format of circuit cells and relay messages;
//   - relay: the relay engine (circuit table, forwarding, extension, teardown);
//   - client: the client side (telescoping build, sending and receiving datagrams);
//   - sched: the fair, bounded per-link output scheduler relays queue cells on;
//   - engine: the client's packet engine between a TUN device and the current circuit.
//
// Path selection and health monitoring arrive with later issues. docs/architecture.md follows a cell through these packages.
package core
