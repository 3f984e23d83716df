package link

import "sync/atomic"

// Stats is a snapshot of a node's counters since Listen. Every datagram read is counted in PacketsIn
// and then either handled or counted in exactly one of the Drop fields or OtherIn.
//
// A datagram is one packet as the peer sent it. With UDP GSO and GRO (Linux) the kernel carries
// several of them as one coalesced datagram: ReadMsgs and WriteMsgs count those kernel-level
// datagrams, so PacketsIn/ReadMsgs and PacketsOut/WriteMsgs are the mean number of packets each held.
type Stats struct {
	PacketsIn, BytesIn   uint64 // datagrams read from the socket, of every kind
	PacketsOut, BytesOut uint64 // datagrams written: transport packets, keepalives, handshakes
	MessagesIn           uint64 // non-empty messages delivered to OnMessage
	MessagesOut          uint64 // non-empty messages sent
	OtherIn              uint64 // datagrams that were not link packets and that a HandleOther handler took
	ReadCalls            uint64 // system calls that read datagrams: PacketsIn/ReadCalls is the mean batch
	ReadMsgs             uint64 // datagrams as the kernel handed them over, a coalesced one (UDP GRO) counting once
	WriteCalls           uint64 // system calls that wrote datagrams: PacketsOut/WriteCalls is the mean batch
	WriteMsgs            uint64 // datagrams as the kernel was handed them, a coalesced one (UDP GSO) counting once

	HandshakesInitiated uint64 // initiations made (each retransmission is a fresh one)
	HandshakesCompleted uint64 // sessions that became usable: on a response (initiator) or on the first packet under them (responder)
	HandshakesFailed    uint64 // dials abandoned, and handshake messages refused after their DH

	DropBadMAC       uint64 // failed authentication: a transport tag, or a handshake message
	DropReplay       uint64 // a transport counter seen before or too old, a stale initiation timestamp, a copy of a used response
	DropUnknownIndex uint64 // no session or pending handshake has the receiver index (or the session expired)
	DropMalformed    uint64 // a link packet type with bad framing, or a datagram longer than a link ever reads (2,048 bytes)
	DropTooShort     uint64 // a link packet type in a datagram too short for any packet of that type
	DropRateLimited  uint64 // handshake messages over a limit: per source, per link, or a budget (ratelimit.go)
	DropMAC1         uint64 // handshake messages whose mac1 is not this node's: sent by whoever does not know its key (cookie.go)
	DropCookie       uint64 // initiations answered with a cookie reply instead of a handshake: under load without a right mac2
	DropRefused      uint64 // initiations from keys Accept refused (or this node's own key)
	DropOther        uint64 // garbage: datagrams that were not link packets and that no HandleOther handler took (or there is none)
	DropRelay        uint64 // relayed packets on a channel this node does not know, or from the wrong address
	DropRelayLimited uint64 // relayed packets over a channel's or the rendezvous's rate

	CookieRepliesIn uint64 // cookie replies to this node's initiations that authenticated (each resends the initiation with mac2 once)

	PathUpgrades        uint64 // links that moved from their relay to a punched direct path
	PathFallbacks       uint64 // punched links whose direct path stopped answering, back on the relay
	RelayForwarded      uint64 // packets this node forwarded as a rendezvous
	RelayForwardedBytes uint64
}

// counters is the live form of Stats.
type counters struct {
	packetsIn, bytesIn, packetsOut, bytesOut, messagesIn, messagesOut, otherIn atomic.Uint64
	readCalls, readMsgs, writeCalls, writeMsgs                                 atomic.Uint64
	handshakesInitiated, handshakesCompleted, handshakesFailed                 atomic.Uint64
	dropBadMAC, dropReplay, dropUnknownIndex, dropMalformed, dropTooShort      atomic.Uint64
	dropRateLimited, dropRefused, dropOther                                    atomic.Uint64
	dropMAC1, dropCookie, cookieRepliesIn                                      atomic.Uint64
	dropRelay, dropRelayLimited                                                atomic.Uint64
	pathUpgrades, pathFallbacks, relayForwarded, relayForwardedBytes           atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		PacketsIn:           c.packetsIn.Load(),
		BytesIn:             c.bytesIn.Load(),
		PacketsOut:          c.packetsOut.Load(),
		BytesOut:            c.bytesOut.Load(),
		MessagesIn:          c.messagesIn.Load(),
		MessagesOut:         c.messagesOut.Load(),
		OtherIn:             c.otherIn.Load(),
		ReadCalls:           c.readCalls.Load(),
		ReadMsgs:            c.readMsgs.Load(),
		WriteCalls:          c.writeCalls.Load(),
		WriteMsgs:           c.writeMsgs.Load(),
		HandshakesInitiated: c.handshakesInitiated.Load(),
		HandshakesCompleted: c.handshakesCompleted.Load(),
		HandshakesFailed:    c.handshakesFailed.Load(),
		DropBadMAC:          c.dropBadMAC.Load(),
		DropReplay:          c.dropReplay.Load(),
		DropUnknownIndex:    c.dropUnknownIndex.Load(),
		DropMalformed:       c.dropMalformed.Load(),
		DropTooShort:        c.dropTooShort.Load(),
		DropRateLimited:     c.dropRateLimited.Load(),
		DropMAC1:            c.dropMAC1.Load(),
		DropCookie:          c.dropCookie.Load(),
		CookieRepliesIn:     c.cookieRepliesIn.Load(),
		DropRefused:         c.dropRefused.Load(),
		DropOther:           c.dropOther.Load(),
		DropRelay:           c.dropRelay.Load(),
		DropRelayLimited:    c.dropRelayLimited.Load(),
		PathUpgrades:        c.pathUpgrades.Load(),
		PathFallbacks:       c.pathFallbacks.Load(),
		RelayForwarded:      c.relayForwarded.Load(),
		RelayForwardedBytes: c.relayForwardedBytes.Load(),
	}
}

// DropCount is one drop counter with the reason metrics name it by.
type DropCount struct {
	Reason string
	Count  uint64
}

// DropsByReason lists every drop counter, zeros included, in a fixed order, each with its reason as
// node metrics label it (meshvpn_link_drops_total{reason=...}, docs/operators.md). A new drop
// reason is a counter in counters, a Drop field in Stats, its line in snapshot and its line here;
// TestEveryDropIsListed fails until all four are there.
func (s Stats) DropsByReason() []DropCount {
	return []DropCount{
		{"bad_mac", s.DropBadMAC},
		{"replay", s.DropReplay},
		{"unknown_index", s.DropUnknownIndex},
		{"malformed", s.DropMalformed},
		{"too_short", s.DropTooShort},
		{"rate_limited", s.DropRateLimited},
		{"mac1", s.DropMAC1},
		{"cookie", s.DropCookie},
		{"refused", s.DropRefused},
		{"garbage", s.DropOther},
		{"relay_unknown", s.DropRelay},
		{"relay_limited", s.DropRelayLimited},
	}
}

// Drops returns the sum of every drop counter.
func (s Stats) Drops() uint64 {
	var sum uint64
	for _, d := range s.DropsByReason() {
		sum += d.Count
	}
	return sum
}

// countMalformed counts a datagram classify found to be a link packet type with bad framing: as too
// short when it cannot hold the smallest packet of its type, as malformed otherwise.
func (c *counters) countMalformed(b []byte) {
	least := 4
	if len(b) > 0 {
		switch b[0] {
		case typeInitiation:
			least = initiationLen
		case typeResponse:
			least = responseLen
		case typeCookieReply:
			least = cookieReplyLen
		case typeTransport:
			least = minTransportLen
		case typeRelayed:
			least = relayHeaderLen + minTransportLen
		}
	}
	if len(b) < least {
		c.dropTooShort.Add(1)
		return
	}
	c.dropMalformed.Add(1)
}
