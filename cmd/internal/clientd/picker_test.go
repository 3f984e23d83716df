package clientd

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meshvpn/meshvpn/cmd/internal/dirclient"
	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/directory"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/path"
	"github.com/meshvpn/meshvpn/core/relay"
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
	net := &dirclient.Network{Consensus: &directory.Consensus{}}
	for i := range 8 {
		var id keys.IdentityPublic
		id[0] = byte(i + 1)
		r := dirclient.Relay{
			Path: path.Relay{Identity: id, Name: fmt.Sprintf("r%d", i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7000),
				Flags: path.Running | path.Stable | path.Fast | path.Guard, Weight: 100},
			Descriptor: &descriptor.Descriptor{},
		}
		if i >= 6 {
			r.Path.Flags, r.Path.Exit = path.Running|path.Stable|path.Fast|path.Exit, exits
			r.Descriptor.Exit = exits
		}
		r.Info = relay.Info{Identity: id, Addr: r.Path.Addr}
		net.Relays = append(net.Relays, r)
	}
	mine := net.Relays[5].Path.Identity
	net.Relays[5].Path.Flags &^= path.Guard // the user's own relay, not (yet) a guard by the directory
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
		if rs[0].Info.Identity != mine {
			t.Fatalf("guard %v, want the entry guard %v", rs[0].Info.Identity, mine)
		}
	}
}
