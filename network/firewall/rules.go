package firewall

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// LAN is what AllowLAN lets through: private, shared-nothing ranges a home or office network uses,
// link-local addresses, multicast and broadcast.
var LAN = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("ff00::/8"),
}

// dnsPorts are DNS and DNS over TLS: blocked to anywhere but the tunnel, the LAN included.
var dnsPorts = []uint16{53, 853}

// Every rule below is a list of expressions over register 1; the notes in nft's syntax say what each
// matches.

// outputRules let out the TUN, loopback, the links, the allowed TCP endpoints, DHCP and neighbour
// discovery (without which the host loses its address and its IPv6 router, and with them its links),
// the LAN when allowed (never DNS there), and count and drop the rest.
func outputRules(cfg Config, s sets) [][]expr.Any {
	rules := [][]expr.Any{
		cat(ifname(expr.MetaKeyOIFNAME, "lo"), accept()),    // oifname "lo" accept
		cat(ifname(expr.MetaKeyOIFNAME, cfg.TUN), accept()), // oifname TUN accept
		// udp sport @link_ports ip daddr @peers4 accept; the same for IPv6
		cat(l4(unix.IPPROTO_UDP), lookupPort(0, s.ports), nfproto(unix.NFPROTO_IPV4), lookupAddr(16, 4, s.peers4), accept()),
		cat(l4(unix.IPPROTO_UDP), lookupPort(0, s.ports), nfproto(unix.NFPROTO_IPV6), lookupAddr(24, 16, s.peers6), accept()),
		// ip daddr . tcp dport @tcp4 accept; the same for IPv6
		cat(l4(unix.IPPROTO_TCP), nfproto(unix.NFPROTO_IPV4), lookupAddrPort(16, 4, 9, s.tcp4), accept()),
		cat(l4(unix.IPPROTO_TCP), nfproto(unix.NFPROTO_IPV6), lookupAddrPort(24, 16, 12, s.tcp6), accept()),
		// DHCP and DHCPv6 clients
		cat(l4(unix.IPPROTO_UDP), port(0, 68), port(2, 67), accept()),
		cat(l4(unix.IPPROTO_UDP), port(0, 546), port(2, 547), accept()),
	}
	// icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
	for _, typ := range []byte{133, 135, 136} {
		rules = append(rules, cat(nfproto(unix.NFPROTO_IPV6), l4(unix.IPPROTO_ICMPV6), icmpType(typ), accept()))
	}
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		for _, p := range dnsPorts {
			rules = append(rules, cat(l4(proto), port(2, p), countDrop())) // udp dport 53 counter name blocked drop
		}
	}
	rules = append(rules, splitRules(cfg, s, false)...)
	if cfg.AllowLAN {
		for _, p := range LAN {
			rules = append(rules, cat(prefix(p, false), accept())) // ip daddr 192.168.0.0/16 accept
		}
	}
	return append(rules, countDrop()) // counter name blocked drop
}

// inputRules let in the TUN, loopback, replies, the links' peers, DHCP and neighbour discovery, and
// the LAN when allowed.
func inputRules(cfg Config, s sets) [][]expr.Any {
	rules := [][]expr.Any{
		cat(ifname(expr.MetaKeyIIFNAME, "lo"), accept()),
		cat(ifname(expr.MetaKeyIIFNAME, cfg.TUN), accept()),
		cat(established(), accept()), // ct state established,related accept
		// udp dport @link_ports ip saddr @peers4 accept: a punched peer's first ping may come before ours
		cat(l4(unix.IPPROTO_UDP), lookupPort(2, s.ports), nfproto(unix.NFPROTO_IPV4), lookupAddr(12, 4, s.peers4), accept()),
		cat(l4(unix.IPPROTO_UDP), lookupPort(2, s.ports), nfproto(unix.NFPROTO_IPV6), lookupAddr(8, 16, s.peers6), accept()),
		cat(l4(unix.IPPROTO_UDP), port(0, 67), port(2, 68), accept()),
		cat(l4(unix.IPPROTO_UDP), port(0, 547), port(2, 546), accept()),
	}
	// icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept
	for _, typ := range []byte{134, 135, 136, 137} {
		rules = append(rules, cat(nfproto(unix.NFPROTO_IPV6), l4(unix.IPPROTO_ICMPV6), icmpType(typ), accept()))
	}
	rules = append(rules, splitRules(cfg, s, true)...)
	if cfg.AllowLAN {
		for _, p := range LAN {
			rules = append(rules, cat(prefix(p, true), accept())) // ip saddr 192.168.0.0/16 accept
		}
	}
	return append(rules, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
}

// forwardRules let what the host forwards (containers, VMs) into the tunnel and its replies back,
// towards the LAN when allowed, and count and drop the rest: it would leave in the clear.
func forwardRules(cfg Config, s sets) [][]expr.Any {
	rules := [][]expr.Any{
		cat(ifname(expr.MetaKeyOIFNAME, cfg.TUN), accept()),
		cat(ifname(expr.MetaKeyIIFNAME, cfg.TUN), accept()),
	}
	rules = append(rules, splitRules(cfg, s, false)...)
	rules = append(rules, splitRules(cfg, s, true)...)
	if cfg.AllowLAN {
		rules = append(rules, cat(established(), accept()))
		for _, p := range LAN {
			rules = append(rules, cat(prefix(p, false), accept()))
		}
	}
	return append(rules, countDrop())
}

func cat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch v := p.(type) {
		case expr.Any:
			out = append(out, v)
		case []expr.Any:
			out = append(out, v...)
		}
	}
	return out
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func countDrop() []expr.Any {
	return []expr.Any{
		&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: blockedCounter},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, 16)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b}}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

func l4(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// port matches the transport header's source (offset 0) or destination (2) port.
func port(offset uint32, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p)},
	}
}

func lookupPort(offset uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

func lookupAddr(offset, n uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

// lookupAddrPort looks up "daddr . tcp dport": the address in register 1, the port in the 32-bit
// register right after it (9 after 4 bytes, 12 after 16).
func lookupAddrPort(offset, n, portReg uint32, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

func icmpType(t byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t}},
	}
}

// prefix matches the source (or destination) address against p.
func prefix(p netip.Prefix, source bool) []expr.Any {
	p = p.Masked()
	fam, offset, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if source {
		offset = 12
	}
	if p.Addr().Is6() {
		fam, offset, n = unix.NFPROTO_IPV6, 24, 16
		if source {
			offset = 8
		}
	}
	out := cat(nfproto(fam), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n})
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// established matches ct state established,related.
func established() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}
