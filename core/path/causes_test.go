package path

import (
	"errors"
	"fmt"
	"testing"

	"github.com/meshvpn/meshvpn/core/netdir"
)

// Failures that waiting does not cure carry their cause: a test network whose relays all sit in one
// /16 (ErrSameSubnet: AllowSameSubnet would make a path), and a named exit that is not in the
// consensus (ErrNoSuchRelay). The kind stays what it was.
func TestPermanentCausesAreNamed(t *testing.T) {
	var rs []netdir.Relay
	for i := range 5 {
		r := rel(i, fmt.Sprintf("10.240.0.%d", 11+i), netdir.Running|netdir.Guard|netdir.Fast|netdir.Stable, 100)
		if i == 4 {
			r.Flags |= netdir.Exit
			r.Exit = mustSummary(t, "tcp=1-65535 udp=none")
		}
		rs = append(rs, r)
	}
	s := newSelector(t, rs, NewGuardSet(), 1, nil)
	_, err := s.Pick(ExitChoice{})
	if !errors.Is(err, ErrSameSubnet) || !(errors.Is(err, ErrNoGuard) || errors.Is(err, ErrNoMiddle)) {
		t.Fatalf("one /16: %v, want ErrSameSubnet beside the kind", err)
	}
	s, err = New(Config{Dir: dir(t, rs), Guards: NewGuardSet(), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pick(ExitChoice{}); err != nil {
		t.Fatalf("one /16 with AllowSameSubnet: %v", err)
	}
	if _, err := s.Pick(ExitChoice{Mode: Named, Value: "nosuch"}); !errors.Is(err, ErrNoSuchRelay) || !errors.Is(err, ErrNoExit) {
		t.Fatalf("named exit not in the consensus: %v", err)
	}
	if _, err := s.Pick(ExitChoice{Mode: Named, Value: "r1"}); errors.Is(err, ErrNoSuchRelay) || !errors.Is(err, ErrNoExit) {
		t.Fatalf("named relay that is no exit: %v, want ErrNoExit only", err)
	}
}
