package engine

import (
	"encoding/binary"
	"strconv"
	"sync"
)

// maxRefusalKeys bounds the protocol/port pairs Refused keeps apart; refusals of further pairs are
// counted under "other".
const maxRefusalKeys = 1024

// refusalKey is what a refusal is counted by: the protocol and destination port of the packet the
// way out refused. The destination's address is never kept.
type refusalKey struct {
	proto uint8 // 0: other (the key limit was reached)
	port  uint16
}

// refusals counts the ICMP "administratively prohibited" errors that came back through the circuit:
// an exit sends one for each packet its policy refuses (a firewall beyond the exit may too), and the
// client's kernel, which gets it from the TUN, fails the program's connection at once.
type refusals struct {
	mu sync.Mutex
	n  map[refusalKey]uint64
}

// note counts pkt, an IPv4 packet of at least 20 bytes, if it is such an error. Refusals are rare: the
// mutex and the map cost nothing on the path of the other packets, which note leaves at the protocol
// byte.
func (r *refusals) note(pkt []byte) {
	if pkt[9] != 1 { // not ICMP
		return
	}
	key, ok := refusalOf(pkt)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[refusalKey]uint64)
	}
	if _, seen := r.n[key]; !seen && len(r.n) >= maxRefusalKeys {
		key = refusalKey{}
	}
	r.n[key]++
}

// refusalOf reads an ICMPv4 destination-unreachable "administratively prohibited" (RFC 1812: code 13,
// communication prohibited; codes 9 and 10, the older network and host forms) and returns the protocol
// and destination port of the packet it quotes.
func refusalOf(pkt []byte) (refusalKey, bool) {
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8+20 || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
		return refusalKey{}, false
	}
	icmp := pkt[ihl:]
	if icmp[0] != 3 || icmp[1] != 13 && icmp[1] != 9 && icmp[1] != 10 {
		return refusalKey{}, false
	}
	q := icmp[8:] // the quoted packet: its IP header and at least 8 bytes of what followed
	qihl := int(q[0]&0x0f) * 4
	if q[0]>>4 != 4 || qihl < 20 || len(q) < qihl {
		return refusalKey{}, false
	}
	key := refusalKey{proto: q[9]}
	if key.proto == 0 {
		return refusalKey{}, false // 0 is the key for "other"; no packet quoted with it is one we sent
	}
	if (key.proto == 6 || key.proto == 17) && len(q) >= qihl+4 {
		key.port = binary.BigEndian.Uint16(q[qihl+2:])
	}
	return key, true
}

// String names the key as status shows it: "tcp/25", "udp/53", "icmp", "proto 47", "other".
func (k refusalKey) String() string {
	switch k.proto {
	case 0:
		return "other"
	case 6:
		return "tcp/" + strconv.Itoa(int(k.port))
	case 17:
		return "udp/" + strconv.Itoa(int(k.port))
	case 1:
		return "icmp"
	}
	return "proto " + strconv.Itoa(int(k.proto))
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
