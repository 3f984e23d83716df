package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/testnet"
)

// demoKillSwitch kills the client daemon (SIGKILL) during a download, tries every way out of the
// client's namespace while tcpdump counts what leaves, and brings the client up again.
func demoKillSwitch(ctx context.Context, n *testnet.Net, step int) error {
	iface, err := n.ClientOuterInterface()
	if err != nil {
		return err
	}
	fmt.Printf("\n%d. the kill switch: kill -9 the client daemon during a download, then try every way out\n", step)
	r, err := n.LeakWhenKilled(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("   the daemon is dead, its TUN device and routes gone; curl, ping, DNS (53) and DNS over TLS (853)\n")
	fmt.Printf("   from the client's namespace got %d answers; tcpdump on %s saw %d packets leave, leaked packets: %d\n",
		len(r.Answered), iface, len(r.Captured), len(r.Leaks))
	if len(r.Leaks) > 0 || len(r.Answered) > 0 {
		return fmt.Errorf("the kill switch leaked: %s %s", strings.Join(r.Leaks, "; "), strings.Join(r.Answered, "; "))
	}
	out, _ := n.ClientCommand("status")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "MeshVPN:") {
			fmt.Println("   meshvpn-client status:", line)
		}
	}
	start := time.Now()
	if err := n.RestartClient(ctx); err != nil {
		return err
	}
	s, err := n.Status(ctx)
	if err != nil {
		return err
	}
	var hops []string
	for _, h := range s.Circuit.Hops {
		hops = append(hops, n.NameOf(h.Name))
	}
	if _, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+testnet.WebAddr+"/"); err != nil {
		return fmt.Errorf("after up again: %w", err)
	}
	fmt.Printf("   meshvpn-client up again: it replaced the block it left, connected in %v through %s; curl works again\n",
		time.Since(start).Round(time.Millisecond), strings.Join(hops, " → "))
	return nil
}
