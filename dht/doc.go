// Package dht will hold MeshVPN's discovery layer on the BitTorrent mainline DHT
// (github.com/anacrolix/dht/v2): running a node with explicit local bootstrap nodes, publishing and
// fetching signed relay descriptors as BEP 44 mutable items, announcing relays under the network's
// infohash, and fetching the signed directory. It arrives with the discovery issue; nothing is here yet.
package dht
