// Package core holds circuits and what a client needs to choose them. Its subpackages:
//
//   - cell: the wire format of circuit cells and relay messages;
//   - relay: the relay engine (circuit table, forwarding, extension, teardown, whois answers);
//   - client: the client side (telescoping build, sending and receiving datagrams, probes);
//   - sched: the fair, bounded per-link output scheduler relays queue cells on;
//   - engine: the client's packet engine between a TUN device and the current circuit (and the
//     side circuits of detour);
//   - circmgr: keeps a client's circuit up, rebuilding to the same exit;
//   - detour: side circuits for the ports the main exit refuses;
//   - authority: the directory authority (crawl, probes, flags, votes, consensus, its store);
//   - publish: a relay's descriptor publishing on the DHT;
//   - netdir: the client's view of the network (netdir.Relay, the one in-memory relay; NetDir
//     snapshots; the directory fetcher and its checks);
//   - path: path selection (guard set, weights, /16 and family rules, exit choice) over a NetDir;
//   - descriptor, directory, genesis: relay descriptors, authorities' directories and their
//     consensus, and the network's trust anchor;
//   - exitports: the exit port summary descriptors carry; whois: the relay identity question.
//
// docs/architecture.md follows a cell through these packages, and a network from genesis to a circuit.
package core
