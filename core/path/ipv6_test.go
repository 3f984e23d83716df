package path

import (
	"errors"
	"strings"
	"testing"
)

// TestExitIPv6: an exit choice that asks for IPv6 takes only exits whose descriptor says they carry
// it, and says so when none does.
func TestExitIPv6(t *testing.T) {
	rs := exitNet(t)
	for i := range rs {
		if n := int(rs[i].Identity[2]); n == 11 || n == 14 {
			rs[i].IPv6 = true // r11, and r14 (degraded)
		}
	}
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	seen := exitsChosen(t, s, ExitChoice{IPv6: true}, 100)
	if len(seen) != 1 || seen[11] != 100 {
		t.Fatalf("IPv6 exits chosen %v, want only r11", seen)
	}
	if seen := exitsChosen(t, s, ExitChoice{}, 300); seen[10] == 0 || seen[12] == 0 {
		t.Fatalf("without IPv6 asked for, exits chosen %v", seen)
	}
	_, err := s.Pick(ExitChoice{IPv6: true, Port: 6500})
	if !errors.Is(err, ErrNoExit) || !strings.Contains(err.Error(), "tcp/6500 over IPv6") {
		t.Fatalf("no IPv6 exit for 6500: %v", err)
	}
	if _, err := s.Pick(ExitChoice{Mode: Named, Value: "r10", IPv6: true}); !errors.Is(err, ErrNoExit) {
		t.Fatalf("a named exit without IPv6: %v", err)
	}
}
