// Package masq installs the exit's kernel NAT: one nftables rule that masquerades packets from the
// session address pool as they leave by any interface but the exit's TUN, so that the internet sees the
// exit's public address. The userspace NAT (exit/nat) has already given each session its own pool
// address, so the kernel's connection tracking keeps sessions apart.
//
// Everything lives in a table of its own ("meshvpn", in the ip family, and in the ip6 family for an exit
// that carries IPv6), installed and removed in one atomic batch, so the operator's other rules are
// never touched.
package masq

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Table is the name of the nftables table the exit owns.
const Table = "meshvpn"

// Rules is an installed masquerade.
type Rules struct {
	conn   *nftables.Conn
	table  *nftables.Table
	table6 *nftables.Table // nil without Options.Pool6
}

// Options says where to install.
type Options struct {
	// NetNSFd, if nonzero, is a file descriptor of the network namespace to install in (tests and the
	// testnet); zero means the namespace of the calling thread.
	NetNSFd int
	// Pool6, if valid, is the exit's IPv6 session pool: its packets are masqueraded too, by a rule
	// in an ip6 table of the same name.
	Pool6 netip.Prefix
}

// Install masquerades IPv4 packets whose source is in pool and that leave by an interface other than
// tun. It replaces an earlier installation of the same table.
func Install(pool netip.Prefix, tun string, opts Options) (*Rules, error) {
	if !pool.Addr().Is4() {
		return nil, fmt.Errorf("masq: pool %v is not IPv4", pool)
	}
	if tun == "" || len(tun) >= 16 {
		return nil, fmt.Errorf("masq: invalid interface name %q", tun)
	}
	if opts.Pool6.IsValid() && (!opts.Pool6.Addr().Is6() || opts.Pool6.Addr().Is4In6()) {
		return nil, fmt.Errorf("masq: IPv6 pool %v is not IPv6", opts.Pool6)
	}
	var copts []nftables.ConnOption
	if opts.NetNSFd != 0 {
		copts = append(copts, nftables.WithNetNSFd(opts.NetNSFd))
	}
	conn, err := nftables.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("masq: netlink: %w", err)
	}
	r := &Rules{conn: conn, table: masquerade(conn, nftables.TableFamilyIPv4, pool, tun)}
	if opts.Pool6.IsValid() {
		r.table6 = masquerade(conn, nftables.TableFamilyIPv6, opts.Pool6, tun)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("masq: install: %w", err)
	}
	return r, nil
}

// masquerade adds to conn's batch the family's table with one rule: a packet from pool that leaves by
// an interface other than tun is masqueraded.
func masquerade(conn *nftables.Conn, family nftables.TableFamily, pool netip.Prefix, tun string) *nftables.Table {
	table := &nftables.Table{Family: family, Name: Table}
	// Adding then deleting then adding in one batch replaces any stale table atomically.
	conn.AddTable(table)
	conn.DelTable(table)
	conn.AddTable(table)
	chain := conn.AddChain(&nftables.Chain{
		Name:     "postrouting",
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	pool = pool.Masked()
	network := pool.Addr().AsSlice()
	mask := prefixMask(pool.Bits(), len(network))
	offset := uint32(12) // ip saddr
	if family == nftables.TableFamilyIPv6 {
		offset = 8 // ip6 saddr
	}
	var ifname [16]byte
	copy(ifname[:], tun)
	conn.AddRule(&nftables.Rule{
		Table: table,
		Chain: chain,
		Exprs: []expr.Any{
			// saddr & mask == pool
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(network))},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(network)), Mask: mask, Xor: make([]byte, len(network))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network},
			// oifname != tun
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname[:]},
			&expr.Masq{},
		},
	})
	return table
}

// Remove deletes the exit's table and everything in it.
func (r *Rules) Remove() error {
	r.conn.DelTable(r.table)
	if r.table6 != nil {
		r.conn.DelTable(r.table6)
	}
	if err := r.conn.Flush(); err != nil {
		return fmt.Errorf("masq: remove: %w", err)
	}
	return nil
}

// Installed reports whether the exit's table holds its masquerade rule.
func (r *Rules) Installed() (bool, error) {
	chains, err := r.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, err
	}
	for _, c := range chains {
		if c.Table.Name != Table || c.Name != "postrouting" {
			continue
		}
		rules, err := r.conn.GetRules(r.table, c)
		if err != nil {
			return false, err
		}
		for _, rule := range rules {
			for _, e := range rule.Exprs {
				if _, ok := e.(*expr.Masq); ok {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// EnableForwarding turns on IPv4 forwarding in the calling thread's network namespace, which an exit
// needs to pass packets from its TUN to its public interface.
func EnableForwarding() error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("masq: enable forwarding: %w", err)
	}
	return nil
}

// EnableForwarding6 turns on IPv6 forwarding in the calling thread's network namespace, for an exit
// that carries IPv6. The kernel then treats the host as a router, which ignores router
// advertisements on interfaces whose accept_ra is 1: see docs/operators.md.
func EnableForwarding6() error {
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("masq: enable IPv6 forwarding: %w", err)
	}
	return nil
}

func prefixMask(bits, n int) []byte {
	m := make([]byte, n)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
