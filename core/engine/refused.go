package engine

import (
	"encoding/binary"
	"strconv"
	"sync"
)

// maxRefusalKeys bounds the flows Refused keeps apart; refusals of further flows are counted under
// "other".
const maxRefusalKeys = 1024

// Flow is what a refusal is counted, and a detour routed, by: the transport protocol and destination
// port of a packet (the port is 0 for protocols without one). The destination's address is never
// kept. The zero Flow is "other".
type Flow struct {
	Proto uint8 // IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …
	Port  uint16
}

// String names the flow as status shows it: "tcp/25", "udp/53", "icmp", "proto 47", "other".
func (f Flow) String() string {
	switch f.Proto {
	case 0:
		return "other"
	case 6:
		return "tcp/" + strconv.Itoa(int(f.Port))
	case 17:
		return "udp/" + strconv.Itoa(int(f.Port))
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return "proto " + strconv.Itoa(int(f.Proto))
}

// refusals counts the ICMP "administratively prohibited" errors that came back through a circuit: an
// exit sends one for each packet its policy refuses (a firewall beyond the exit may too), and the
// client's kernel, which gets it from the TUN, fails the program's connection at once.
type refusals struct {
	mu sync.Mutex
	n  map[Flow]uint64
}

// note counts pkt, an IP packet of at least 20 bytes, if it is such an error, and returns the flow
// it refuses. Refusals are rare: the mutex and the map cost nothing on the path of the other
// packets, which note leaves at the protocol byte.
func (r *refusals) note(pkt []byte) (Flow, bool) {
	f, ok := refusalOf(pkt)
	if !ok {
		return Flow{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[Flow]uint64)
	}
	key := f
	if _, seen := r.n[key]; !seen && len(r.n) >= maxRefusalKeys {
		key = Flow{}
	}
	r.n[key]++
	return f, true
}

// refusalOf reads an "administratively prohibited" error and returns the flow of the packet it
// quotes: ICMPv4 destination unreachable code 13 (RFC 1812, communication prohibited) or codes 9 and
// 10 (the older network and host forms); ICMPv6 destination unreachable code 1 (RFC 4443,
// communication with destination administratively prohibited).
func refusalOf(pkt []byte) (Flow, bool) {
	switch {
	case pkt[0]>>4 == 4 && pkt[9] == 1:
		return refusal4(pkt)
	case pkt[0]>>4 == 6 && len(pkt) >= 40 && pkt[6] == 58:
		return refusal6(pkt)
	}
	return Flow{}, false
}

func refusal4(pkt []byte) (Flow, bool) {
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8+20 || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
		return Flow{}, false
	}
	icmp := pkt[ihl:]
	if icmp[0] != 3 || icmp[1] != 13 && icmp[1] != 9 && icmp[1] != 10 {
		return Flow{}, false
	}
	q := icmp[8:] // the quoted packet: its IP header and at least 8 bytes of what followed
	qihl := int(q[0]&0x0f) * 4
	if q[0]>>4 != 4 || qihl < 20 || len(q) < qihl {
		return Flow{}, false
	}
	return quotedFlow(q[9], q[qihl:])
}

// refusal6 is refusal4 for IPv6. The error follows the IPv6 header directly (an exit sends no
// extension headers), and the flow is read from the quoted packet's first next-header: a quoted
// packet with extension headers is counted by their protocol, without a port.
func refusal6(pkt []byte) (Flow, bool) {
	icmp := pkt[40:]
	if len(icmp) < 8+40 || icmp[0] != 1 || icmp[1] != 1 {
		return Flow{}, false
	}
	q := icmp[8:]
	if q[0]>>4 != 6 {
		return Flow{}, false
	}
	return quotedFlow(q[6], q[40:])
}

// quotedFlow is the flow of a quoted packet of protocol proto whose transport header starts l4.
func quotedFlow(proto uint8, l4 []byte) (Flow, bool) {
	f := Flow{Proto: proto}
	if f.Proto == 0 {
		return Flow{}, false // 0 is the key for "other"; no packet quoted with it is one we sent
	}
	if (f.Proto == 6 || f.Proto == 17) && len(l4) >= 4 {
		f.Port = binary.BigEndian.Uint16(l4[2:])
	}
	return f, true
}

// flowOf returns the flow of an outgoing packet that admit let through (a version 4 header of at
// least 20 bytes, or a version 6 one of at least 40), and false for a packet it cannot say: a
// fragment after the first, a header cut short, IPv6 extension headers.
func flowOf(pkt []byte) (Flow, bool) {
	var proto uint8
	var l4 []byte
	if pkt[0]>>4 == 4 {
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
			return Flow{}, false
		}
		proto, l4 = pkt[9], pkt[ihl:]
	} else {
		proto, l4 = pkt[6], pkt[40:]
	}
	if proto != 6 && proto != 17 {
		return Flow{Proto: proto}, proto != 0
	}
	if len(l4) < 4 {
		return Flow{}, false
	}
	return Flow{Proto: proto, Port: binary.BigEndian.Uint16(l4[2:])}, true
}

// Refused returns how many packets the way out refused (ICMP administratively prohibited came back),
// by protocol and destination port: "tcp/25" → 3.
func (e *Engine) Refused() map[string]uint64 {
	e.refused.mu.Lock()
	defer e.refused.mu.Unlock()
	out := make(map[string]uint64, len(e.refused.n))
	for k, v := range e.refused.n {
		out[k.String()] = v
	}
	return out
}
