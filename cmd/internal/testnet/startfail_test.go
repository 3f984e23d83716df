package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshvpn/meshvpn/cmd/internal/clientd"
)

// TestStartFailsAtOnceWhenWaitingCannotHelp (issue 17): a client whose start cannot work however long
// it waits ends at once, with exit code 2 and the fix, instead of after its start timeout (exit 1, "no
// circuit"): relays that share one /16 without allow_same_subnet, an exit that is not in the
// directory, a genesis file that is not the network's. The second client runs beside the testnet's
// own, in its namespace, without DNS changes, and never gets as far as a TUN device.
func TestStartFailsAtOnceWhenWaitingCannotHelp(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	// Without the testnet client's kill switch: the authorities sit on the client's own LAN (the hub),
	// which its kill switch closes to any program but itself (allow_lan = false).
	n := start(t, ctx, Options{NoKillSwitch: true})
	dir := t.TempDir()
	text, err := os.ReadFile(n.GenesisFile)
	if err != nil {
		t.Fatal(err)
	}
	other := regexp.MustCompile(`network-id ([0-9a-f])`).ReplaceAllStringFunc(string(text), func(s string) string {
		if strings.HasSuffix(s, "0") {
			return s[:len(s)-1] + "1"
		}
		return s[:len(s)-1] + "0"
	})
	wrongGenesis := filepath.Join(dir, "other-genesis")
	if err := os.WriteFile(wrongGenesis, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name, genesis, extra, want string
	}{
		{"one /16", n.GenesisFile, "", "allow_same_subnet = true"},
		{"no such exit", n.GenesisFile, "allow_same_subnet = true\nexit = \"nosuch\"\n", "is not in the directory"},
		{"another network's genesis", wrongGenesis, "allow_same_subnet = true\n", "is it the right genesis file?"},
	} {
		cfg := filepath.Join(dir, fmt.Sprintf("client%d.toml", i))
		text := fmt.Sprintf("genesis = %q\nstate_dir = %q\ncontrol_socket = %q\nkill_switch = false\nlisten = \"0.0.0.0:0\"\n%s[tun]\nname = \"mvf%d\"\nroute_all = false\n[dns]\nmode = \"off\"\n",
			c.genesis, filepath.Join(dir, fmt.Sprintf("state%d", i)), filepath.Join(dir, fmt.Sprintf("c%d.sock", i)), c.extra, i)
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := n.InClient(n.Bin("meshvpn-client"), "up", "--foreground", "--timeout", "60s", "--config", cfg)
		if code := exitCode(err); code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d (want 2, at once), output:\n%s\nwant it to say %q", c.name, code, out, c.want)
		}
	}
	if s, err := n.Status(ctx); err != nil || s.State != "connected" {
		t.Fatalf("the testnet's own client after the failed starts: %v %v", s.State, err)
	}

	// The directory view: the running client's, by the operators' names; and with no daemon to ask,
	// fetched from the genesis file's authorities.
	out, err := n.clientCmd("directory")
	if err != nil || !strings.Contains(out, "directory: 7 relays, agreed by 3 authorities, the running client's") {
		t.Fatalf("directory: %v\n%s", err, out)
	}
	for _, name := range []string{"r1", "r5", "x1", "x2"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("directory lacks %s:\n%s", name, out)
		}
	}
	out, err = n.InClient(n.Bin("meshvpn-client"), "directory", "--json", "--genesis", n.GenesisFile, "--control-socket", filepath.Join(dir, "none.sock"))
	var v clientd.DirectoryView
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Source != "fetched" || len(v.Relays) != 7 || len(v.Authorities) < 2 {
		t.Fatalf("directory --json with no daemon: %v\n%s", err, out)
	}
}
