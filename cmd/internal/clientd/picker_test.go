package clientd

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"go.uber.org/zap"
)

// With entry_guards, every circuit starts at one of them, even a relay the authorities did not flag
// as a guard, and never at a relay they did.
func TestEntryGuardsAreTheOnlyGuards(t *testing.T) {
	exits, err := exitports.Parse("tcp=1-65535 udp=1-65535")
	if err != nil {
		t.Fatal(err)
	}
	var rs []netdir.Relay
	for i := range 8 {
		var id keys.IdentityPublic
		id[0] = byte(i + 1)
		r := netdir.Relay{Identity: id, Name: fmt.Sprintf("r%d", i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000),
			Flags: netdir.Running | netdir.Stable | netdir.Fast | netdir.Guard, Weight: 100}
		if i >= 6 {
			r.Flags, r.Exit = netdir.Running|netdir.Stable|netdir.Fast|netdir.Exit, exits
		}
		rs = append(rs, r)
	}
	mine := rs[5].Identity
	rs[5].Flags &^= netdir.Guard // the user's own relay, not (yet) a guard by the directory
	net, err := netdir.FromList(rs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Exit: "random", ExitPort: 80, StateDir: t.TempDir(), EntryGuards: []string{mine.String()}}
	p, err := newDirPicker(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.update(net); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		rs, err := p.Pick(nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Identity != mine {
			t.Fatalf("guard %v, want the entry guard %v", rs[0].Identity, mine)
		}
	}
}
