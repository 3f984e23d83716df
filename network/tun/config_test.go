package tun

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem; none means valid
	}{
		{"zero", Config{}, nil},
		{"full", Config{Name: "mvpn0", MTU: 1400, Backend: BackendWater, Addr: netip.MustParsePrefix("10.77.0.1/24"), Up: true}, nil},
		{"kernel format name", Config{Name: "mvpn%d"}, nil},
		{"longest name", Config{Name: strings.Repeat("a", MaxNameLen)}, nil},
		{"ipv6", Config{Addr: netip.MustParsePrefix("fd00::1/64"), MTU: MinMTUIPv6}, nil},
		{"mtu bounds", Config{MTU: MaxMTU}, nil},
		{"long name", Config{Name: strings.Repeat("a", MaxNameLen+1)}, []string{"longer than"}},
		{"slash", Config{Name: "a/b"}, []string{"contains"}},
		{"colon", Config{Name: "eth0:1"}, []string{"contains"}},
		{"space", Config{Name: "a b"}, []string{"contains"}},
		{"dot", Config{Name: "."}, []string{"reserved"}},
		{"dotdot", Config{Name: ".."}, []string{"reserved"}},
		{"backend", Config{Backend: "tap"}, []string{"unknown backend"}},
		{"mtu low", Config{MTU: MinMTU - 1}, []string{"MTU 575 out of range"}},
		{"mtu negative", Config{MTU: -1}, []string{"out of range"}},
		{"mtu high", Config{MTU: MaxMTU + 1}, []string{"out of range"}},
		{"ipv6 small mtu", Config{Addr: netip.MustParsePrefix("fd00::1/64"), MTU: 1279}, []string{"below IPv6's minimum"}},
		{"ipv6 default mtu", Config{Addr: netip.MustParsePrefix("fd00::1/64")}, nil},
		{"invalid prefix", Config{Addr: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 33)}, []string{"not a valid prefix"}},
		{"mapped", Config{Addr: netip.MustParsePrefix("::ffff:10.0.0.1/120")}, []string{"IPv4-mapped"}},
		{"unspecified", Config{Addr: netip.MustParsePrefix("0.0.0.0/0")}, []string{"not a unicast"}},
		{"multicast", Config{Addr: netip.MustParsePrefix("224.0.0.1/24")}, []string{"not a unicast"}},
		{"everything at once", Config{Name: "a/b", Backend: "x", MTU: 10, Addr: netip.MustParsePrefix("0.0.0.0/8")},
			[]string{"contains", "unknown backend", "out of range", "not a unicast"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tt.want))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate() reported %d problems, want %d: %v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want a problem containing %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.MTU != DefaultMTU || c.Backend != DefaultBackend {
		t.Errorf("defaults = MTU %d backend %q, want %d %q", c.MTU, c.Backend, DefaultMTU, DefaultBackend)
	}
	c = Config{MTU: 1400, Backend: BackendWater}.withDefaults()
	if c.MTU != 1400 || c.Backend != BackendWater {
		t.Errorf("withDefaults overrode set fields: %+v", c)
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	// Validation comes before any system call, so this needs no privileges.
	if _, err := Open(Config{Name: "a/b", MTU: 1}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("Open(invalid) = %v, want the validation errors", err)
	}
}
