package testnet

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/meshvpn/meshvpn/cmd/internal/exitnode"
	"github.com/meshvpn/meshvpn/cmd/internal/relaylist"
)

// NATKind is how a testnet node is connected to the hub: on it (""), or behind a router of its own.
type NATKind string

const (
	// HomeNAT is a home router: an nftables masquerade (endpoint-independent mapping, ports kept where
	// free) and a firewall that drops whatever new arrives from outside. Hole punching gets through.
	HomeNAT NATKind = "home"
	// SymmetricNAT is the same router with `masquerade random,fully-random`: a new port for every
	// destination, so hole punching between two of them fails and links are relayed.
	SymmetricNAT NATKind = "symmetric"
)

// lanPrefix is the LAN of the i-th router (192.168.101.0/24, …); the router is .1, the node .2.
func lanPrefix(i int) (router, host netip.Addr) {
	return netip.AddrFrom4([4]byte{192, 168, byte(101 + i), 1}), netip.AddrFrom4([4]byte{192, 168, byte(101 + i), 2})
}

// behindNAT makes a router namespace for the node whose namespace is host: its WAN on the hub at wan,
// for an exit also a leg on the web network at web (the internet the exit reaches), and a LAN to host,
// whose default route goes through it. It returns the host's LAN address.
func (n *Net) behindNAT(hub, host *namespace, name string, wan, web netip.Addr, kind NATKind) (netip.Addr, error) {
	gw, err := n.namespace(name + "gw")
	if err != nil {
		return netip.Addr{}, err
	}
	if err := n.plug(gw, hub, "br0", name, netip.PrefixFrom(wan, 24)); err != nil {
		return netip.Addr{}, err
	}
	if web.IsValid() {
		if err := n.plug(gw, n.wb, "wbr", "w"+name, netip.PrefixFrom(web, 24)); err != nil {
			return netip.Addr{}, err
		}
		if _, err := gw.exec("ip", "route", "add", "default", "via", WebAddr); err != nil {
			return netip.Addr{}, err
		}
	}
	n.routers++
	routerLAN, hostLAN := lanPrefix(n.routers)
	if _, err := sh("ip", "link", "add", "lan", "netns", gw.name, "type", "veth", "peer", "name", "eth0", "netns", host.name); err != nil {
		return netip.Addr{}, err
	}
	for _, c := range []struct {
		ns   *namespace
		args []string
	}{
		{gw, []string{"ip", "addr", "add", netip.PrefixFrom(routerLAN, 24).String(), "dev", "lan"}},
		{gw, []string{"ip", "link", "set", "lan", "up"}},
		{gw, []string{"sysctl", "-qw", "net.ipv4.ip_forward=1"}},
		{host, []string{"ip", "addr", "add", netip.PrefixFrom(hostLAN, 24).String(), "dev", "eth0"}},
		{host, []string{"ip", "link", "set", "eth0", "up"}},
		{host, []string{"ip", "route", "add", "default", "via", routerLAN.String()}},
	} {
		if _, err := c.ns.exec(c.args...); err != nil {
			return netip.Addr{}, err
		}
	}
	masq := "masquerade"
	if kind == SymmetricNAT {
		masq = "masquerade random,fully-random"
	}
	// Unsolicited packets from outside are dropped before conntrack keeps an entry for them, as a home
	// router's firewall does: a punch packet that arrives before this side has sent its own would
	// otherwise make conntrack give this side's first packet to the peer a new port (docs/nat.md).
	rules := fmt.Sprintf(`table ip testnat {
 chain post {
  type nat hook postrouting priority srcnat;
  oifname != "lan" %s
 }
 chain filter_in {
  type filter hook input priority filter;
  iifname != { "lan", "lo" } ct state new drop
 }
 chain filter_fwd {
  type filter hook forward priority filter;
  iifname != "lan" ct state new drop
 }
}
`, masq)
	if _, err := gw.execStdin(rules, "nft", "-f", "-"); err != nil {
		return netip.Addr{}, err
	}
	return hostLAN, nil
}

// execStdin runs a command inside the namespace with stdin.
func (ns *namespace) execStdin(stdin string, args ...string) (string, error) {
	return shStdin(stdin, append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

// Rendezvous returns the name of the node whose rendezvous registration node holds now (from its
// relay list entry), or "" if it holds none.
func (n *Net) Rendezvous(node *Node) (string, error) {
	text, err := os.ReadFile(filepath.Join(node.dir, "data", exitnode.EntryFile))
	if err != nil {
		return "", err
	}
	es, err := relaylist.Parse(text)
	if err != nil || len(es) != 1 {
		return "", fmt.Errorf("%s's entry: %v", node.Name, err)
	}
	if len(es[0].Rendezvous) == 0 {
		return "", nil
	}
	rv := es[0].Rendezvous[0]
	for _, r := range n.Relays {
		if r.Entry.LinkKey == rv.LinkKey {
			return r.Name, nil
		}
	}
	return "", fmt.Errorf("%s names a rendezvous %v that is no testnet relay", node.Name, rv.Addr)
}
