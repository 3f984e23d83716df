package session

import (
	"net/netip"
	"sync/atomic"

	"github.com/meshvpn/meshvpn/core/cell"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/exit/policy"
)

// An exit with an IPv6 pool carries its clients' IPv6 as it carries IPv4: the session's own IPv6
// address replaces the client's inner one (whose first IPv6 packet fixes it), the kernel masquerades
// the pool, and replies find their session by that address. Without a pool, IPv6 is dropped and
// counted (DropIPv6), never leaked.

// fixInner reports whether src may be a session's inner address: the one in *inner, or, when there is
// none yet, src, which becomes it. Every reply is written back to that address, so a packet from
// elsewhere (a client's connection made outside its tunnel and routed in later) must not move it —
// that once sent a download's replies to an address the client does not have in the tunnel, and its
// kernel reset the connection.
func fixInner(inner *atomic.Pointer[netip.Addr], src netip.Addr) bool {
	if in := inner.Load(); in != nil {
		return *in == src
	}
	return inner.CompareAndSwap(nil, &src) || *inner.Load() == src
}

// toInternet6 is toInternet for an IPv6 packet of session s.
func (e *Engine) toInternet6(c Circuit, s *session, pkt []byte) {
	if e.cfg.Pool6 == nil {
		e.dropV6.Add(1)
		return
	}
	h, err := nat.ParseIPv6(pkt)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	switch policy.Proto(h.Proto) {
	case policy.ProtoTCP, policy.ProtoUDP, policy.ProtoICMPv6:
	default:
		// Extension headers past the ones ParseIPv6 walks end up here too: a routing header would
		// send the packet on beyond the destination the policy judged.
		e.dropProto.Add(1)
		return
	}
	d := e.cfg.Policy.DecideIPv6(h.Dst, policy.Proto(h.Proto), h.DstPort)
	if !d.Allow {
		e.deny6(c, pkt, d.Reason)
		return
	}
	if !fixInner(&s.inner6, h.Src) {
		e.dropSource.Add(1)
		return
	}
	if _, err := nat.RewriteSource6(pkt[:h.TotalLen], s.addr6); err != nil {
		e.dropMalformed.Add(1)
		return
	}
	if err := e.writer.Write(pkt[:h.TotalLen]); err != nil {
		e.dropTUN.Add(1)
		return
	}
	e.out.Add(1)
}

// deny6 is deny for IPv6: an ICMPv6 "communication administratively prohibited".
func (e *Engine) deny6(c Circuit, pkt []byte, reason policy.Reason) {
	e.countDenied(reason)
	var buf [1280]byte
	icmp, err := nat.ICMPv6Unreachable(buf[:0], pkt, e.cfg.Self6, nat.Code6AdminProhibited)
	if err == nil {
		_ = c.SendMsg(cell.MsgData, icmp)
	}
}

// fromInternet6 is fromInternet for an IPv6 packet from the TUN.
func (e *Engine) fromInternet6(pkt []byte) {
	if e.cfg.Pool6 == nil {
		e.dropV6.Add(1)
		return
	}
	h, err := nat.ParseIPv6(pkt)
	if err != nil {
		e.dropMalformed.Add(1)
		return
	}
	switch policy.Proto(h.Proto) {
	case policy.ProtoTCP, policy.ProtoUDP, policy.ProtoICMPv6:
	default:
		e.dropProto.Add(1) // no session sent such a protocol: toInternet6 forwards none
		return
	}
	id, ok := e.cfg.Pool6.Lookup(h.Dst)
	e.toSession(id, ok, pkt[:h.TotalLen], innerOf6, nat.RewriteDest6)
}

func innerOf6(s *session) *netip.Addr { return s.inner6.Load() }
