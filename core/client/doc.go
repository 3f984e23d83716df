// Package client is the client side of circuits: it builds a circuit hop by hop (CREATE to the guard,
// then EXTEND through the circuit for each further hop), seals datagrams for the last hop and opens what
// comes back, and notices when a circuit dies. The VPN daemon puts a TUN device on top of it.
package client
