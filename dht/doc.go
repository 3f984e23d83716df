// Package dht is MeshVPN's node on a BitTorrent mainline DHT: a wrapper over
// github.com/anacrolix/dht/v2 (v2.23.0), which does the Kademlia. A Node runs on a socket the caller
// bound, starts only from the bootstrap nodes it is given, publishes and fetches signed BEP 44
// mutable items (relay descriptors keyed by the relay's Ed25519 key), and announces and finds peers
// under an infohash (NetworkInfohash: a network's relays).
//
//	n, err := dht.New(dht.Config{Conn: conn, Bootstrap: addrs})
//	err = n.Bootstrap(ctx)
//	err = n.Announce(ctx, dht.NetworkInfohash(networkID), port)
//	peers, err := n.FindPeers(ctx, dht.NetworkInfohash(networkID))
//	err = n.Publish(ctx, relayKey, salt, seq, descriptor)
//	descriptor, seq, err := n.Fetch(ctx, relayPub, salt)
//
// Items expire after Config.ItemLifetime and announces after Config.Peers.TTL unless renewed:
// publishers call Publish again (same seq and value refreshes), peers Announce again, well within
// those times.
//
// # The library's pitfalls, and how each is handled
//
// Each has a test that fails without the handling (see the test files); where the pitfall lies in
// the library alone, a canary test (TestLibrary…) fails once the library is fixed, so that the
// workaround can go.
//
//   - Dangerous defaults. The library's default config resolves public routers by DNS and listens on
//     every interface. Config.Conn is required and Config.Bootstrap is the only source of starting
//     nodes (an empty list is an error unless Config.First marks a network's first node, or the
//     nodes file holds some). serverConfig sets every field whose default is dangerous, and a test
//     checks them without a network.
//   - The in-memory peer store is broken (it keys peers by IP and decodes that key as ip:port, so
//     lookups return nothing; a nil store drops announces). peerStore replaces it: keyed by
//     infohash and ip:port, bounded per infohash and in total (oldest first), entries expire after
//     30 minutes, answers carry at most 50 peers sampled at random.
//   - One send limiter (25 packets/s) is shared by every server in the process. Each Node has its
//     own (Config.SendRate, SendBurst; default 1000/s, burst 100).
//   - A zero Exp expires BEP 44 items as they are stored. Config.ItemLifetime defaults to two hours.
//     Our own bounded store (itemStore) also drops expired items nobody asks for.
//   - A fresh bootstrap node hands out no one: the library hands out only nodes that answered it,
//     and pings those that merely queried it once a minute. The introducer pings every node at its
//     first query, and Bootstrap pings the starting nodes first, so that the bootstrap node has an
//     answer from each joiner before the next one arrives.
//   - Bootstrap before TableMaintainer, or they bootstrap at once and one fails. Bootstrap starts
//     the maintainer when it is done. BEP 44 limits (value ≤ 1000 bytes bencoded, salt ≤ 64 bytes,
//     seq increasing over the copy in our store and in the DHT) are checked before anything is
//     sent, with errors to test by errors.Is. On a public address the node id is made valid for
//     Config.PublicIP (or the socket's own public address) under BEP 42.
//
// Found while writing this package, in the same release:
//
//   - One datagram crashes the process: a query without its "a" dictionary (announce_peer and put
//     dereference it), and a compact address shorter than a port (a slice of negative length). The
//     library parses on its read goroutine, where nothing can recover. guardConn, the socket the
//     library reads from, runs checkPacket first: it decodes each datagram the same way under
//     recover and drops what would crash the library (fuzzed with the whole node behind it). It
//     also keeps read errors from the library, which panics on any it did not cause itself.
//   - find_node answers aim at the query's info_hash (absent from find_node, so the zero id) and
//     scan only the buckets at or beyond that target's distance, so a node hands out at best the
//     half of its table farthest from itself, often nothing. We answer find_node ourselves with the
//     good nodes nearest the real target (responders tracks which addresses answered us).
//   - The library's get answers have the same fault in their node lists, and its get_peers answers
//     carry no nodes once it holds peers (and otherwise scan only the buckets at or beyond the
//     target's distance). Their write tokens are the library's own (its token server is
//     unexported), so we cannot answer those ourselves. Lookups that walked with get or get_peers
//     ended far from the target, on a different set each time: beyond a hundred or so nodes, items
//     landed elsewhere than later fetches looked (a fresh node missed 16 to 26% of the items in a
//     DHT of 150 to 250 nodes). Every lookup therefore walks with find_node, which our nodes answer
//     right, and then asks the nearest nodes alone with get or get_peers, and puts or announces to
//     them (lookup.go). FindPeers asks them again while their answers are samples of a larger swarm
//     (at most 50 peers an answer), until new peers stop coming.
//   - Bootstrap with nothing to start from returns without stopping its traversal: one goroutine
//     leaks per call, and the maintainer calls it every minute. A lonely first node therefore runs
//     neither until a node is in its table.
//   - The library consults its starting nodes only when its table is empty, so a stale saved table
//     would shut out the bootstrap nodes; Bootstrap pings them first, which puts them in the table.
//   - Every query is sent once and given up after QueryTimeout (resends are off by default, and a
//     resend that finds the send limiter empty fails the query at once). One lost datagram, or an
//     answer late on a busy host, cost a node for the whole operation. A joiner whose bootstrap
//     walk went unanswered kept a table holding only its bootstrap node, Bootstrap still
//     succeeded, and every lookup then hung on one find_node to that node; a Fetch whose gets to
//     the item's holders went unanswered reported ErrNotFound. So a fresh node on a busy host
//     fetched 48 or 49 of 50 items now and then (TestPublishFetchAtScale), as a real client on a
//     lossy link would. Our lookups' queries and Bootstrap's pings are sent twice (queryTries: an
//     answer to either send counts); Bootstrap walks again while none of its find_node queries is
//     answered; Fetch walks once more after a miss that some of the nearest nodes left unanswered;
//     FindPeers asks an unanswering nearest node in one more round. TestLookupsSurviveLoss loses
//     one datagram in five after the DHT has formed.
//
// The routing table is kept in Config.NodesFile (a text file: our id and up to 1024 nodes), loaded
// by New, written every Config.SaveInterval and on Close. Close returns once every goroutine of the
// node, the library's included, has ended; queries the library sent without a context end at their
// timeout (Config.QueryTimeout), so Close can take that long.
package dht
