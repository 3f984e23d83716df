package testnet

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/meshvpn/meshvpn/network/tamper"
)

// tamperPort is where the tamperer listens in the client's router; the router redirects the client's
// datagrams to its guard there.
const tamperPort = 17000

// startTamperer puts an attacker on the wire between the client and its guard: in the client's router
// (gw), an nftables rule redirects every datagram from the client's LAN to the guard's link port to a
// tamper.Proxy, which passes them on to the guard from the router's own address, tampered, and the
// guard's answers back. Conntrack gives the answers the guard's address again, so neither end sees the
// proxy: only what it does to the datagrams.
func (n *Net) startTamperer(gw *namespace, guard *Node, cfg tamper.Config) error {
	far := netip.AddrPortFrom(guard.Addr, relayPort)
	rules := fmt.Sprintf(`table ip tamper {
 chain pre {
  type nat hook prerouting priority dstnat;
  iifname "lan" ip daddr %s udp dport %d redirect to :%d
 }
}
`, guard.Addr, relayPort, tamperPort)
	if _, err := gw.execStdin(rules, "nft", "-f", "-"); err != nil {
		return err
	}
	var down, up *net.UDPConn
	err := gw.do(func() (err error) {
		if down, err = net.ListenUDP("udp4", &net.UDPAddr{Port: tamperPort}); err != nil {
			return err
		}
		if up, err = net.ListenUDP("udp4", &net.UDPAddr{}); err != nil {
			down.Close()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("tamperer: %w", err)
	}
	n.tamperer = tamper.New(down, up, far, cfg)
	n.tamperer.SetTampering(false) // Start switches it on once the client is up
	return nil
}

// Tamperer returns the attacker between the client and its guard (Options.Tamper), or nil.
func (n *Net) Tamperer() *tamper.Proxy { return n.tamperer }
