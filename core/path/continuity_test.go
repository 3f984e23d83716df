package path

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// listNet is a network as a relay list describes it (what circmgr's ListPicker used to pick from):
// five relays that are guards, two exits that allow every port, all in one /24, nothing measured.
func listNet() []netdir.Relay {
	var rs []netdir.Relay
	for i := range 7 {
		r := rel(i, fmt.Sprintf("10.240.0.%d", 11+i), netdir.Running|netdir.Guard, 0)
		if i >= 5 {
			r.Name, r.Flags = fmt.Sprintf("x%d", i-4), netdir.Running|netdir.Exit
			r.Exit = exitports.Summary{TCP: []exitports.Range{{Lo: 1, Hi: 65535}}, UDP: []exitports.Range{{Lo: 1, Hi: 65535}}}
		}
		rs = append(rs, r)
	}
	return rs
}

func listSelector(t *testing.T, rs []netdir.Relay, g *GuardSet, seed uint64) *Selector {
	t.Helper()
	s := newSelector(t, rs, g, seed, nil)
	s.allowSameSubnet = true // as a relay list's selector is made (clientd)
	return s
}

// The guard is sticky: every path starts at the same guard while it serves, also over a new
// directory (a new Selector sharing the guard set), and an avoided relay takes no position.
func TestGuardIsSticky(t *testing.T) {
	g := NewGuardSet()
	s := listSelector(t, listNet(), g, 1)
	var guard keys.IdentityPublic
	for i := range 50 {
		p, err := s.Pick(ExitChoice{}, testID(2))
		if err != nil {
			t.Fatal(err)
		}
		if p[2].Name[0] != 'x' || p[0].Name[0] == 'x' || p[0].Identity == p[1].Identity || p[1].Identity == p[2].Identity {
			t.Fatalf("path %v", p)
		}
		for _, r := range p {
			if r.Identity == testID(2) {
				t.Fatalf("the avoided relay is in %v", p)
			}
		}
		if i > 0 && p[0].Identity != guard {
			t.Fatalf("the guard changed from %v to %v while it served", guard, p[0])
		}
		guard = p[0].Identity
	}
	s = listSelector(t, listNet(), g, 2)
	if p, err := s.Pick(ExitChoice{}); err != nil || p[0].Identity != guard {
		t.Fatalf("over a new directory: %v %v, want the guard %v", p, err, guard)
	}
}

// A named exit is every path's exit, by name or identity; a relay that is not an exit, or no relay,
// is an error that says so.
func TestNamedExitIsEveryPathsExit(t *testing.T) {
	rs := listNet()
	s := listSelector(t, rs, NewGuardSet(), 3)
	for _, v := range []string{"x1", rs[5].Identity.String()} {
		for range 20 {
			p, err := s.Pick(ExitChoice{Mode: Named, Value: v})
			if err != nil || p[2].Name != "x1" {
				t.Fatalf("exit %s: %v %v", v, p, err)
			}
		}
	}
	for v, want := range map[string]string{"r1": "is not an exit", "nosuch": `no relay in the consensus is named "nosuch"`} {
		if _, err := s.Pick(ExitChoice{Mode: Named, Value: v}); !errors.Is(err, ErrNoExit) || !isErr(err, ErrNoExit, want) {
			t.Errorf("exit %s: %v, want %q", v, err, want)
		}
	}
}

// The rebuild after a middle died goes to the same exit — the one that holds the client's session —
// through the same guard and another middle: what session continuity depends on (circmgr asks for
// the exit by identity and avoids the dead middle; with PickThrough, through the guard it heard from).
func TestRebuildGoesToTheSameExit(t *testing.T) {
	s := listSelector(t, listNet(), NewGuardSet(), 4)
	first, err := s.Pick(ExitChoice{})
	if err != nil {
		t.Fatal(err)
	}
	same := ExitChoice{Mode: Named, Value: first[2].Identity.String()}
	for range 20 {
		p, err := s.Pick(same, first[1].Identity)
		if err != nil {
			t.Fatal(err)
		}
		if p[2].Identity != first[2].Identity || p[0].Identity != first[0].Identity || p[1].Identity == first[1].Identity {
			t.Fatalf("rebuild %v after %v: want the same guard and exit, another middle", p, first)
		}
		p, err = s.PickThrough(first[0].Identity, same, first[1].Identity)
		if err != nil {
			t.Fatal(err)
		}
		if p[2].Identity != first[2].Identity || p[0].Identity != first[0].Identity || p[1].Identity == first[1].Identity {
			t.Fatalf("rebuild through the guard %v after %v", p, first)
		}
	}
}
