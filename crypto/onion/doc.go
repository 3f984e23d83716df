// Package onion is the relay-cell layer crypto of MeshVPN circuits.
//
// A cell body has a fixed size (one of a few size classes) on every link of a circuit. Each hop owns one
// layer: an AEAD ciphertext, its 16-byte tag and an 8-byte nonce field, laid out at the front of the
// body, with one layer's worth of zero padding (24 bytes) per earlier hop at the end. Going forward, the
// hop at depth d opens its layer (authenticating it), which leaves the next hop's layer in front and
// 24·d bytes of zeros behind; going backward, the hop seals what comes from the next hop, consuming 24
// bytes of padding. So a cell is exactly as long when it leaves a hop as when it came in, every hop checks
// its own layer's tag, and a change made anywhere is caught by the next hop that opens a layer over it
// (and by the client at the latest). docs/protocol.md has the byte layout and the argument against
// tagging attacks.
//
// Nonces are never sent twice under one key: each direction of each hop has its own key and a 56-bit
// counter that only goes up, and a key's generation (epoch, whose low byte travels with the counter)
// moves on by a one-way ratchet when its counter would wrap, its byte budget (RotateAfterBytes) is spent,
// or the scheduled ratchet finds it a period old (ratchet.go: hourly by default, driven by a sweep of the
// circuits' owner, with a nudge that takes the receiver along). Receivers check a replay window per
// generation, and erase the previous generation a short window after they moved on.
//
// A cell is either addressed to a hop (it ends there) or passing through; which one is bound into the
// AEAD nonce's domain, not sent, so no hop learns which cells end at another.
package onion
