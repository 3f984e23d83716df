// Package firewall is the client's kill switch: an nftables table of its own (inet meshvpn_client) in
// the client's network namespace that lets out only what the VPN itself needs (traffic on the TUN,
// loopback, the client's encrypted links to the relays it talks to directly, the directory fetches it
// makes around the tunnel) and drops the rest, so that nothing leaves in the clear while the daemon
// starts, rebuilds a circuit or is dead. The table is the kernel's, not the process's: it stays when the
// daemon is killed, and goes only when Disarm removes it (meshvpn-client down) or the next Arm replaces
// it. What is allowed changes at run time (a new guard, an authority fetched around the tunnel) by
// adding and removing elements of the table's sets, each change one netlink batch: the drop never
// lapses. Split tunnelling is a deliberate hole of the user's making (split.go): the ranges excluded
// from the tunnel, or in include mode all but the included ones, are let through in sets of their own.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Table is the name of the client's nftables table (family inet: IPv4 and IPv6 alike).
const Table = "meshvpn_client"

// blockedCounter is the named counter of the packets the kill switch kept from leaving.
const blockedCounter = "blocked"

// Config describes a kill switch.
type Config struct {
	// TUN is the tunnel's device name: everything on it is allowed (it may not exist yet).
	TUN string
	// AllowLAN lets traffic to and from the local network (LAN) through: private, link-local and
	// multicast addresses. DNS to them stays blocked.
	AllowLAN bool
	// Exclude lists the ranges split tunnelling sends around the tunnel: traffic to and from them is
	// let through (DNS excepted). SetExclude replaces them at run time.
	Exclude []netip.Prefix
	// Include, if not empty, is split tunnelling's include mode: only these ranges go through the
	// tunnel, and traffic to and from every other address is let through (DNS excepted).
	Include []netip.Prefix
	// OutsideMark, if nonzero, is the firewall mark of the packets of programs split tunnelling sends
	// around the tunnel (network/appsplit): they are let through (DNS excepted).
	OutsideMark uint32
	// NetNSFd, if nonzero, is a file descriptor of the network namespace to act in (tests); zero
	// means the calling thread's.
	NetNSFd int
}

// Options say where to look for a kill switch.
type Options struct {
	// NetNSFd, if nonzero, is a file descriptor of the network namespace to act in; zero means the
	// calling thread's.
	NetNSFd int
}

// KillSwitch is an armed kill switch: the table is in the kernel; this value updates its sets.
type KillSwitch struct {
	cfg   Config
	table *nftables.Table
	sets  sets

	mu   sync.Mutex
	held map[any]int // allowed elements (netip.Addr, netip.AddrPort, port) by how many Allow calls hold them
}

// sets are the table's sets of what is allowed, changed at run time.
type sets struct {
	peers4, peers6 *nftables.Set // UDP hosts the link socket may talk to (guards, rendezvous, STUN)
	ports          *nftables.Set // the link socket's local UDP ports
	tcp4, tcp6     *nftables.Set // TCP address . port pairs (directory authorities, while fetched around the tunnel)
	out4, out6     *nftables.Set // ranges excluded from the tunnel (split tunnelling): let through
	in4, in6       *nftables.Set // include mode's ranges: everything else is let through
}

// linkPort is the key of the held map for a link socket's port.
type linkPort uint16

func conn(fd int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if fd != 0 {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("kill switch: netlink: %w", err)
	}
	return c, nil
}

// Arm installs the kill switch, replacing in the same atomic batch any table of the same name (the
// block a crashed daemon left): the host is never without a block in between. Nothing but the TUN,
// loopback and (with AllowLAN) the LAN is allowed until the Allow methods add to it.
func Arm(cfg Config) (*KillSwitch, error) {
	if cfg.TUN == "" || len(cfg.TUN) >= 16 {
		return nil, fmt.Errorf("kill switch: invalid TUN name %q", cfg.TUN)
	}
	c, err := conn(cfg.NetNSFd)
	if err != nil {
		return nil, err
	}
	k := &KillSwitch{cfg: cfg, table: &nftables.Table{Family: nftables.TableFamilyINet, Name: Table}, held: map[any]int{}}
	// Adding, deleting and adding again in one batch replaces a stale table, or makes a new one.
	c.AddTable(k.table)
	c.DelTable(k.table)
	c.AddTable(k.table)
	if err := k.build(c); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("kill switch: install: %w", err)
	}
	return k, nil
}

// build adds the table's sets, counter and chains to c's batch.
func (k *KillSwitch) build(c *nftables.Conn) error {
	t := k.table
	k.sets = sets{
		peers4: &nftables.Set{Table: t, Name: "peers4", KeyType: nftables.TypeIPAddr},
		peers6: &nftables.Set{Table: t, Name: "peers6", KeyType: nftables.TypeIP6Addr},
		ports:  &nftables.Set{Table: t, Name: "link_ports", KeyType: nftables.TypeInetService},
		tcp4:   &nftables.Set{Table: t, Name: "tcp4", KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService), Concatenation: true},
		tcp6:   &nftables.Set{Table: t, Name: "tcp6", KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService), Concatenation: true},
	}
	for _, s := range []*nftables.Set{k.sets.peers4, k.sets.peers6, k.sets.ports, k.sets.tcp4, k.sets.tcp6} {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("kill switch: set %s: %w", s.Name, err)
		}
	}
	if err := k.buildSplit(c); err != nil {
		return err
	}
	c.AddObj(&nftables.NamedObj{Table: t, Name: blockedCounter, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	drop := nftables.ChainPolicyDrop
	for _, ch := range []struct {
		name  string
		hook  *nftables.ChainHook
		rules [][]expr.Any
	}{
		{"output", nftables.ChainHookOutput, outputRules(k.cfg, k.sets)},
		{"input", nftables.ChainHookInput, inputRules(k.cfg, k.sets)},
		{"forward", nftables.ChainHookForward, forwardRules(k.cfg, k.sets)},
	} {
		chain := c.AddChain(&nftables.Chain{
			Name: ch.name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: ch.hook,
			Priority: nftables.ChainPriorityFilter, Policy: &drop,
		})
		for _, exprs := range ch.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: exprs})
		}
	}
	return nil
}

// AllowLinkPort lets the client's link socket, bound to the local UDP port, talk to the peers that
// AllowPeer allows.
func (k *KillSwitch) AllowLinkPort(port uint16) error {
	return k.change(linkPort(port), true)
}

// AllowPeer lets UDP between the link socket and addr through: a guard, a guard's rendezvous, a STUN
// server. Any port of addr: a punched path reaches a relay at the port its NAT gave it.
func (k *KillSwitch) AllowPeer(addr netip.Addr) error {
	return k.change(addr.Unmap(), true)
}

// AllowTCP lets TCP connections to ap through (a directory authority, fetched around the tunnel), until
// as many RevokeTCP calls as AllowTCP calls.
func (k *KillSwitch) AllowTCP(ap netip.AddrPort) error {
	return k.change(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true)
}

// RevokeTCP undoes one AllowTCP.
func (k *KillSwitch) RevokeTCP(ap netip.AddrPort) error {
	return k.change(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), false)
}

// change adds (or, when no holder is left, removes) one element in one batch.
func (k *KillSwitch) change(key any, add bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.held[key]
	switch {
	case add && n > 0, !add && n > 1:
		if add {
			k.held[key]++
		} else {
			k.held[key]--
		}
		return nil
	case !add && n == 0:
		return nil
	}
	set, elem, err := k.element(key)
	if err != nil {
		return err
	}
	c, err := conn(k.cfg.NetNSFd)
	if err != nil {
		return err
	}
	if add {
		err = c.SetAddElements(set, []nftables.SetElement{elem})
	} else {
		err = c.SetDeleteElements(set, []nftables.SetElement{elem})
	}
	if err == nil {
		err = c.Flush()
	}
	if err != nil {
		return fmt.Errorf("kill switch: update %s: %w", set.Name, err)
	}
	if add {
		k.held[key] = 1
	} else {
		delete(k.held, key)
	}
	return nil
}

// element returns the set an allowed thing belongs in and its element there.
func (k *KillSwitch) element(key any) (*nftables.Set, nftables.SetElement, error) {
	switch v := key.(type) {
	case linkPort:
		return k.sets.ports, nftables.SetElement{Key: be16(uint16(v))}, nil
	case netip.Addr:
		if v.Is4() {
			return k.sets.peers4, nftables.SetElement{Key: v.AsSlice()}, nil
		}
		if v.Is6() {
			return k.sets.peers6, nftables.SetElement{Key: v.AsSlice()}, nil
		}
	case netip.AddrPort:
		// A concatenation's fields are each padded to 4 bytes.
		key := append(v.Addr().AsSlice(), byte(v.Port()>>8), byte(v.Port()), 0, 0)
		if v.Addr().Is4() {
			return k.sets.tcp4, nftables.SetElement{Key: key}, nil
		}
		if v.Addr().Is6() {
			return k.sets.tcp6, nftables.SetElement{Key: key}, nil
		}
	}
	return nil, nftables.SetElement{}, fmt.Errorf("kill switch: cannot allow %v", key)
}

// Blocked returns how many packets the kill switch has kept from leaving since it was armed.
func (k *KillSwitch) Blocked() (uint64, error) {
	return blocked(k.cfg.NetNSFd)
}

func blocked(fd int) (uint64, error) {
	c, err := conn(fd)
	if err != nil {
		return 0, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: Table}
	o, err := c.GetObject(&nftables.NamedObj{Table: t, Name: blockedCounter, Type: nftables.ObjTypeCounter})
	if err != nil {
		return 0, fmt.Errorf("kill switch: counter: %w", err)
	}
	if no, ok := o.(*nftables.NamedObj); ok {
		if ctr, ok := no.Obj.(*expr.Counter); ok {
			return ctr.Packets, nil
		}
	}
	return 0, errors.New("kill switch: counter: unexpected object")
}

// State is what is in place in a namespace.
type State struct {
	Armed bool `json:"armed"`
	// Blocked counts the packets kept from leaving since the table was made.
	Blocked uint64 `json:"blocked_packets"`
}

// Check reports whether a kill switch is armed in the namespace, and what it blocked.
func Check(o Options) (State, error) {
	c, err := conn(o.NetNSFd)
	if err != nil {
		return State{}, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return State{}, fmt.Errorf("kill switch: list tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == Table {
			n, err := blocked(o.NetNSFd)
			return State{Armed: true, Blocked: n}, err
		}
	}
	return State{}, nil
}

// Disarm removes the kill switch from the namespace, and reports whether there was one.
func Disarm(o Options) (bool, error) {
	s, err := Check(o)
	if err != nil || !s.Armed {
		return false, err
	}
	c, err := conn(o.NetNSFd)
	if err != nil {
		return false, err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: Table})
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("kill switch: remove: %w", err)
	}
	return true, nil
}
