package path

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// pickerNet: guards r0 and r1, middles r2 to r4, exits x1 (every port but 25) and x2 (every port).
func pickerNet(t *testing.T) *netdir.NetDir {
	t.Helper()
	var rs []netdir.Relay
	for i := range 7 {
		r := rel(i, ipv4(i), netdir.Running, 100)
		switch {
		case i < 2:
			r.Flags |= netdir.Guard
		case i >= 5:
			r.Name, r.Flags = []string{"x1", "x2"}[i-5], netdir.Running|netdir.Exit
			r.Exit = mustSummary(t, []string{"tcp=1-24,26-65535 udp=none", "tcp=1-65535 udp=1-65535"}[i-5])
		}
		rs = append(rs, r)
	}
	return dir(t, rs)
}

// A Picker picks over the NetDir Update gave it: a port is preferred unless required, the rebuild's
// exit is kept, the choice's avoided relays are avoided, the entry guards are the only guards, and the
// guard set is saved when a pick changed it.
func TestPicker(t *testing.T) {
	file := filepath.Join(t.TempDir(), "guards")
	g := NewGuardSet()
	p, err := NewPicker(PickerConfig{Guards: g, GuardsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	one := p.For(ExitChoice{Mode: Named, Value: "x1", Port: 25}, false)
	if _, err := one.Pick(nil, nil, 0); !errors.Is(err, ErrNoExit) {
		t.Fatalf("before Update: %v", err)
	}
	if _, err := p.Update(pickerNet(t)); err != nil {
		t.Fatal(err)
	}
	if rs, err := one.Pick(nil, nil, 0); err != nil || rs[2].Name != "x1" {
		t.Fatalf("preferred port 25 at x1, which refuses it: %v %v, want x1 all the same", rs, err)
	}
	if _, err := p.For(ExitChoice{Mode: Named, Value: "x1", Port: 25}, true).Pick(nil, nil, 0); !errors.Is(err, ErrNoExit) {
		t.Fatalf("required port 25 at x1: %v", err)
	}
	if _, err := LoadGuardSet(file); err != nil {
		t.Fatalf("the guard set was not saved: %v", err)
	}
	x2, _ := p.Dir().ByID(testID(6))
	for range 20 {
		rs, err := p.For(ExitChoice{}, false, rel(2, ipv4(2), 0, 0)).Pick(&x2, []netdir.Relay{rel(3, ipv4(3), 0, 0)}, 0)
		if err != nil || rs[2].Name != "x2" || rs[1].Identity == testID(2) || rs[1].Identity == testID(3) {
			t.Fatalf("rebuild to x2 avoiding r2 (the choice's) and r3 (the request's): %v %v", rs, err)
		}
	}
	if !p.ExitAllows(testID(6), ExitChoice{Proto: UDP, Port: 53}) || p.ExitAllows(testID(5), ExitChoice{Port: 25}) || !p.HasExit("x1") || p.HasExit("r1") {
		t.Fatal("ExitAllows or HasExit")
	}

	// Entry guards: r4, which the directory does not flag Guard, is every path's guard.
	q, _ := NewPicker(PickerConfig{Guards: NewGuardSet(), EntryGuards: []keys.IdentityPublic{testID(4)}})
	q.Update(pickerNet(t))
	for range 20 {
		if rs, err := q.For(ExitChoice{}, false).Pick(nil, nil, 0); err != nil || rs[0].Identity != testID(4) {
			t.Fatalf("entry guard r4: %v %v", rs, err)
		}
	}
}
