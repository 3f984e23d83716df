// Package link carries encrypted, authenticated links between neighbouring MeshVPN nodes over one UDP
// socket per node, in the manner of WireGuard: a 1-RTT Noise handshake makes a pair of
// ChaCha20-Poly1305 keys, and transport packets carry an explicit counter so that they survive loss and
// reordering.
//
// # Packets
//
// All integers are big-endian, as in the rest of the protocol. Byte 0 is the type, bytes 1–3 are zero.
//
//	1 initiation  type 1 | 0 0 0 | sender index 4 | rekey index 4 | Noise msg 1 (108) | mac1 16 | mac2 16 = 152 bytes
//	              Noise msg 1 = e 32 | s 32+16 | TAI64N timestamp 12+16
//	2 response    type 2 | 0 0 0 | sender index 4 | receiver index 4 | Noise msg 2 (48) | mac1 16 = 76 bytes
//	              Noise msg 2 = e 32 | empty payload +16
//	3 cookie reply type 3 | 0 0 0 | receiver index 4 | nonce 24 | cookie 16+16 = 64 bytes
//	4 transport   type 4 | 0 0 0 | receiver index 4 | counter 8 | ciphertext len(msg) | tag 16
//	              AEAD = ChaCha20-Poly1305, additional data = the 16-byte header,
//	              nonce = 4 zero bytes | counter (the header's bytes 8..16)
//
// A transport packet carries at most MaxMessage (1420) bytes, so it is at most MaxPacket (1452) bytes:
// 1500 less IPv6's 40 and UDP's 8. An empty message is a keepalive. A datagram is a link packet when its
// first byte is 1–4 and it is not STUN (bytes 4..8 are not the STUN magic cookie, a value no index
// takes); any other datagram goes to the handlers registered with Node.HandleOther, so STUN can share the socket.
//
// # Handshake
//
// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (handshake.go). The prologue is "meshvpn-link-v2" followed by
// the initiation's 12-byte header; the psk2 value is the response's 12-byte header padded with zeros to
// 32 bytes. Both are public: they bind every header bit into the transcript, so a changed index fails
// the handshake instead of misrouting it. The initiator's payload is a TAI64N timestamp; a responder
// refuses an initiation that is not newer than the last it accepted from the same static key. After the
// handshake the two Noise transport keys (Split) key our own transport: initiator to responder with the
// first, the other way with the second.
//
// # Sessions and timers
//
// Every session has a random 32-bit index that names it in packets sent to it, so a packet finds its
// session without regard to its source address, and an authenticated packet from a new address moves
// the link there (roaming). A responder does not send under a new session until the initiator's first
// packet under it arrives (the initiator sends a keepalive at once); until then the previous session
// carries traffic. The initiator rekeys after Config.RekeyAfter or 2^60 messages, and the replaced
// session keeps receiving until a few seconds after its successor is confirmed. A session is used for
// at most RekeyAfter plus half of it (at least three handshake retries more). Idle links send keepalives
// every KeepaliveInterval; a link that hears nothing authenticated for DeadAfter is closed (ErrDead).
//
// # Load
//
// As in WireGuard (cookie.go), every handshake message carries mac1, keyed by the receiver's static
// public key, which is checked before anything else: junk from whoever does not know the key costs a
// hash and a counter. Under load an initiation must carry mac2, made with a cookie that the responder
// sends in a cookie reply and that is bound to the initiator's source address, so that it proves the
// address. Handshakes then go in on three budgets before any DH is spent (ratelimit.go): unproven
// initiations while there is no load (2,000/s), initiations that proved their address (2,000/s, and
// 20/s with bursts of 40 per source; an IPv6 /64 counts as one source), and rekeys of live links, each
// link on its own (2/s, bursts of 8). They run on their own goroutine, live links' first, so a
// handshake flood cannot slow the transport path, which takes no lock but the index table's read lock
// and its session's replay-window lock, and allocates nothing.
//
// # Batches and offloads
//
// Each reader takes up to MaxBatch datagrams with one system call (recvmmsg on Linux) into slots it
// reuses; a datagram longer than 2,048 bytes is counted as malformed. SendBatch writes up to MaxBatch
// packets with one system call (sendmmsg on Linux). On Linux a node also uses UDP GSO and GRO where
// the kernel has them (internal/udp): SendBatch hands a run of equal-length packets to the kernel
// as one datagram with a UDP_SEGMENT size, which the kernel cuts back into the same packets after a
// single pass through its UDP and IP layers (and, between namespaces on one machine, after the
// virtual devices too); a reader with UDP_GRO on gets such runs whole, in 64 KiB slots (512 KiB per
// reader), and splits them by the segment size the kernel reports before handling each packet on its
// own. On the wire nothing changes: a peer without either sees the same datagrams in the same order.
// A kernel that refuses a segmented datagram (EIO, EINVAL) turns GSO off for that socket for good.
//
// # One owner per socket
//
// A Node owns its socket. New sets it up without reading; its owner then registers what the
// socket's datagrams go to — the links' handlers (Config, or SetHandlers for an engine such as
// core/relay or core/client that is handed the node) and, with HandleOther, the handlers of datagrams
// that are not link packets (a relay's whois answers, a STUN prober) — and Start begins reading, so
// that no datagram ever meets a handler that is not there yet.
//
// # Layout
//
// The package does three jobs, kept apart:
//   - links: config.go, node.go (the node, New/Start, its readers), link.go, dial.go, receive.go, send.go,
//     batch.go (SendBatch), handshake.go, cookie.go, ratelimit.go, session.go, index.go,
//     timers.go, packet.go, timestamp.go, dh.go, stats.go;
//   - socket I/O: internal/udp (batched reads and writes, UDP GSO and GRO, buffer sizes, socket
//     addresses), which knows datagrams and addresses, nothing of links;
//   - NAT traversal and the rendezvous: traverse.go (a node registering with and dialling through a
//     rendezvous, punching, relayed packets), rendezvous.go (the rendezvous service), control.go
//     (their control messages).
package link
