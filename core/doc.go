// Package core will hold circuits: the telescoping build (CREATE/CREATED, EXTEND/EXTENDED, DESTROY),
// the relay's circuit table and forwarding, path selection, the client engine that moves packets between
// the TUN device and circuits, and circuit health monitoring. It arrives with the links-and-circuits
// issue; nothing is here yet.
package core
