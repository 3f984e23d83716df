package exitnode

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestEntrySaysIPv6: an exit with an IPv6 pool whose rules accept some IPv6 port says it carries
// IPv6 in its relay list entry; without a pool, with rules that refuse all IPv6, or as a relay, not.
func TestEntrySaysIPv6(t *testing.T) {
	k, err := LoadKeys(t.TempDir(), false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pool6, policy string
		relayOnly     bool
		want          bool
	}{
		{"fd00:8::/112", "", false, true},
		{"", "", false, false},
		{"fd00:8::/112", "reject *6:*\naccept *:*", false, false},
		{"fd00:8::/112", "", true, false},
	} {
		cfg := DefaultConfig()
		cfg.Exit.Pool6, cfg.RelayOnly, cfg.PublicAddress = c.pool6, c.relayOnly, "198.51.100.7:7000"
		if c.policy != "" {
			cfg.Exit.Policy = c.policy
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := EntryFor(cfg, k).IPv6; got != c.want {
			t.Errorf("pool6 %q policy %q relay-only %v: IPv6 %v, want %v", c.pool6, c.policy, c.relayOnly, got, c.want)
		}
	}
	for pool6, want := range map[string]string{"10.9.0.0/16": "not IPv6", "fd00::/64": "too large", "nonsense": "exit.pool6"} {
		cfg := DefaultConfig()
		cfg.Exit.Pool6, cfg.PublicAddress = pool6, "198.51.100.7:7000"
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pool6 %q: %v, want %q", pool6, err, want)
		}
	}
}
