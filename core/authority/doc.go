// Package authority is a discovery authority. Once a period it crawls the DHT for the network's
// relays, checks each relay's signed descriptor, probes the relay through a one-hop circuit (latency,
// throughput, whether it answers at all), keeps what it learnt in an embedded database, and publishes
// its own signed, hash-chained directory document (core/directory) over HTTP and, as a pointer, on the
// DHT. Clients combine the documents of a threshold of the authorities named in the genesis file.
//
// The meshvpn-discovery daemon (cmd/internal/discovery) runs one, with its configuration file, keys
// on disk and metrics. Settings are named below as in that file: probe.timeout is
// Config.Probe.Timeout, drop_after_failures Config.Rules.DropFailures.
//
// # Conventions of the network
//
// Relays and clients rely on these; they are the network's, not this authority's choices:
//
//   - A relay announces itself on the DHT under dht.NetworkInfohash(genesis.NetworkID) with its link
//     UDP port (the port its circuits use; the address is the one the DHT sees its announce from).
//   - A relay publishes its signed descriptor as a BEP 44 mutable item keyed by its Ed25519 identity,
//     with salt descriptor.Salt(networkID) (the 32-byte network id) and BEP 44 seq equal to
//     descriptor.Seq. It republishes before the item expires (BEP 44: two hours). Relays do both
//     with core/publish.
//   - A relay answers core/whois requests on its link socket (relay.Config.NetworkID). The authority
//     asks from a socket of its own; the answer is not trusted beyond naming the key to look up.
//   - An authority serves, under the path of its URL in the genesis file:
//     GET /v1/directory (its latest document), GET /v1/directory/{serial} (an older one, for clients
//     walking the hash chain; the last directory.MaxChainWalk+1 are kept) and GET /v1/descriptors
//     (every descriptor its latest document lists, each as a 2-byte big-endian length and the
//     descriptor's bytes, in the document's order; see EncodeBundle and ParseBundle).
//   - An authority publishes a pointer to its latest document on the DHT: a BEP 44 mutable item keyed
//     by its identity, salt DirectorySalt(networkID) ("directory" and the network id), value
//     Pointer.Encode (serial, 8 bytes big-endian, and the document's SHA-256, 32 bytes), seq = serial.
//
// # A period
//
// Every Period (default 10 minutes), on a fixed schedule, one round, whose document is signed by
// half a period after it starts whatever the DHT and the relays do (steps 1 and 2, the crawl, and
// each probe of step 3 run apart from the rounds; see "On schedule" below):
//
//  1. FindPeers under the network's infohash; each address found is asked whois (bounded concurrency,
//     whois_timeout). Answers naming another network are counted and ignored.
//  2. For each identity named, the descriptor is fetched from the DHT and refused, with the reason
//     counted, unless: it parses (signature included), its identity is the key it was stored under,
//     the BEP 44 seq equals its Seq, it passes descriptor.Check (network, age, onion key window), one
//     of the addresses that named the identity is among its addresses, and the descriptor.Tracker
//     accepts it (no lower seq, no reused seq with other content; the tracker is seeded from the
//     database at start). A refused relay keeps its last accepted descriptor.
//  3. Every relay with a descriptor valid now that has not been missing for drop_after_missed
//     periods is probed: a one-hop circuit is built to it (core/client) at the address it was found
//     at; the build time, the round trip of one probe cell and the throughput of a burst (burst ×
//     burst_size bytes) are recorded. Circuits are built concurrently, bursts run one at a time (each
//     relay measured alone), and a lost CREATE or probe cell is retried within the probe's timeout.
//     A probe that fails at any step is a failed probe.
//  4. Flags and weights are computed (below), the document is signed (serial one more than the last,
//     Previous the hash of the last, valid from the second it is signed in for at least validity,
//     default 3 periods, at least 2), and stored in the database in the same transaction as the
//     relays' records. Only then is it served and its pointer published (in the background: a DHT
//     slow to take it delays no round): a document that was served is never signed again
//     differently, even after a crash, so a restart continues the chain without equivocating.
//
// A relay that was not accepted in a crawl (not announced, not answering whois, descriptor absent or
// refused) counts one missed period; a DHT lookup that fails (rather than finds nothing) counts
// against nobody: the relays' lookup, against no relay, a descriptor's, against that relay.
//
// # On schedule
//
// A relay that dies leaves its address in the DHT's peer stores and its node in routing tables:
// whois questions to it wait for whois_timeout, DHT lookups for the dead node's query timeout, and
// its probe for probe.timeout. Had the round waited for them, a document would come late, after the
// last one expired, and clients would find no consensus exactly when they need a fresh directory. So:
//
//   - A round starts a crawl unless one is still running, and waits for it until a quarter period
//     after the round's start; a crawl that ends later comes into the next round.
//   - It then takes in the probes that ended since the last round, starts a probe of every relay to
//     be probed whose last probe has ended, and waits for them until half a period after its start
//     (its deadline). A probe that has gone probe.timeout, or a period if that is shorter, without
//     an answer from its relay (no circuit, or no answer to its probe cell) is a failed probe for
//     each round whose deadline finds it so; it goes on, and should it succeed, that comes into a
//     later round. A probe still queued (the authority's own backlog), whose relay answered (its
//     burst waits for others') or that has not had that long counts neither way.
//   - The document is signed at the deadline at the latest. It is valid for at least validity, two
//     periods or more, from the moment it is signed, so it is still valid when its successor (at
//     most a period and a half later) is served.
//
// A silent relay thus loses Running in the first document signed probe.timeout (at most a period)
// after its probe started: the next round's or the one after. With the default timeouts, far
// shorter than the period, every round's probe has ended by its deadline, as before. A relay that
// answers again is Running in the first document after its answer.
//
// # Flags, weights and times
//
// Of each relay the database keeps the last probe_history probes; "the last 3" below is the last
// drop_after_failures probes (default 3), and medians are lower medians over the relays listed.
//
//   - Listed: the relay has a descriptor valid now, has had a successful probe, has not failed
//     drop_after_failures probes in a row, and has not been missing for drop_after_missed periods
//     (both default 3). A relay that goes silent is thus Degraded in the first round after it stops
//     (its probe fails; the second, when probe.timeout is not well under the period: see "On
//     schedule") and gone from the document within 3 rounds of that.
//   - Running: its last probe succeeded.
//   - Degraded: one of its last 3 probes failed (but not all 3: then it is not listed), or its
//     latency is more than degraded_latency_factor (3) times the median latency and more than
//     degraded_latency_floor (10 ms; on a fast network a 3× spread is noise).
//   - Stable: first accepted at least stable_age ago (default 24 h; on a young network less, see
//     below), and at least stable_ratio (90%) of the probes on record succeeded.
//   - Fast: bandwidth at least fast_fraction (1/8) of the median: every relay but the slowest, as in
//     Tor.
//   - Guard: Stable, Fast, and bandwidth at least the median.
//   - Exit: the descriptor has an exit port summary.
//
// # A young network
//
// Clients enter the network only through Guards (core/path), and Guard needs Stable, which needs
// stable_age (24 h): on its first day a network has no relay that old, so by those rules alone it
// would have no Guard and carry no traffic until a day after its relays started, and again for a day
// whenever its authorities lose their databases. Tor's authorities do not meet this: their
// thresholds are medians of the network's own figures (Stable: a mean time between failures at least
// the median, or 7 days; Guard: "familiar", which the relays that appeared most recently, an eighth
// of them, are not), capped by absolute guarantees, so a young Tor network has Guards from its first
// vote. Here the absolute rule holds while it gives at least min_guards (default 3, the client's
// guard set) Guards; short of that, Stable's age threshold drops to the lower median of the listed
// relays' ages. Then:
//
//   - the older half of the relays counts as Stable, the other conditions (stable_ratio, Fast,
//     bandwidth at least the median for Guard) unchanged, so a flapping or slow relay is no Guard;
//   - relays first seen together, as all of a new network's are, qualify together, so authorities
//     whose bandwidth measurements differ still agree on enough Guards for the consensus; and a relay
//     that joins later does not take Guard from those that were there before it;
//   - it ends by itself: once min_guards relays qualify by the absolute rule, it does not apply.
//
// The cost is that while it applies, a newcomer who brings more relays than the network has gets
// Stable (and, if fast, Guard) at once, where the absolute rule would make it wait stable_age; on a
// young network that wait would stop nobody determined anyway. min_guards = 0 turns this off.
//
// Bandwidth and latency are exponentially weighted moving averages (weight 0.3 for each new
// successful probe) of the burst's throughput (bytes/s, both ways) and the probe cell's round trip.
// An entry's Weight is that bandwidth in kB/s (1000 bytes per second, rounded up, at least 1 once
// measured, at most 2^32-1), its LatencyMicros the latency in µs (at least 1 once measured).
//
// A relay's record is deleted (and its seq forgotten) once it has not been accepted for forgetAfter
// (7 days): by then its last descriptor is long stale, so forgetting its seq lets no replay in.
package authority
