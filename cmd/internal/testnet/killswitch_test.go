package testnet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/network/firewall"
)

// TestKillSwitchHoldsWhenTheDaemonDies kills the client daemon with SIGKILL during a download: with
// its TUN device and routes gone, curl, ping and DNS from the client's namespace find the default
// route, and the kill switch it left must keep every one of their packets from leaving (tcpdump on the
// client's outer interface sees none); `status` says the block is armed, `down --keep-blocking`
// leaves it, `up` again replaces it and traffic flows through the tunnel, and `down` removes every
// rule.
func TestKillSwitchHoldsWhenTheDaemonDies(t *testing.T) {
	needRootAlone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n := start(t, ctx, Options{NAT: map[string]NATKind{"cl": HomeNAT}})
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.KillSwitch == nil || !s.KillSwitch.Armed || s.KillSwitch.AllowLAN {
		t.Fatalf("status: kill switch %+v, want armed without the LAN", s.KillSwitch)
	}

	r, err := n.LeakWhenKilled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Leaks) > 0 {
		t.Errorf("%d packets left the dead client's namespace outside its links:\n%s", len(r.Leaks), strings.Join(r.Leaks, "\n"))
	}
	if len(r.Answered) > 0 {
		t.Errorf("with the daemon dead, answers came back: %v", r.Answered)
	}
	if r.Download == nil || r.Download.Bytes >= BigSize {
		t.Errorf("the download finished without the daemon: %+v", r.Download)
	}
	out, err := n.ClientCommand("status")
	if err == nil || !strings.Contains(out, "kill switch is armed") {
		t.Errorf("status with the daemon dead (%v):\n%s", err, out)
	}
	if out, err := n.ClientDown(true); err != nil || !strings.Contains(out, "stays armed") {
		t.Errorf("down --keep-blocking (%v): %s", err, out)
	}
	if rs, _ := n.ClientRuleset(); !strings.Contains(rs, "table inet "+firewall.Table) {
		t.Fatalf("down --keep-blocking took the kill switch away:\n%s", rs)
	}

	// up over the dead daemon's table: it replaces it, and traffic flows through the tunnel again.
	if err := n.RestartClient(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := n.InClient("curl", "-sS", "--max-time", "10", "http://"+WebAddr+"/"); err != nil {
		t.Fatalf("curl after up again: %v %s", err, out)
	}
	if s, err := n.Status(ctx); err != nil || s.KillSwitch == nil || !s.KillSwitch.Armed {
		t.Fatalf("status after up again: %+v, %v", s.KillSwitch, err)
	}
	if rs, _ := n.ClientRuleset(); strings.Count(rs, "table inet "+firewall.Table) != 1 {
		t.Errorf("want one kill switch table after up again:\n%s", rs)
	}

	if out, err := n.ClientDown(false); err != nil || !strings.Contains(out, "kill switch is lifted") {
		t.Fatalf("down (%v): %s", err, out)
	}
	if rs, err := n.ClientRuleset(); err != nil || strings.Contains(rs, firewall.Table) {
		t.Fatalf("rules left after down (%v):\n%s", err, rs)
	}
}
