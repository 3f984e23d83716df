package clientd

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestValidateSplit(t *testing.T) {
	for _, tc := range []struct {
		name             string
		exclude, include []string
		routeAll         bool
		want             []string // "" parts: valid
	}{
		{"exclude", []string{"192.0.2.0/24", "2001:db8::/32"}, nil, true, nil},
		{"include", nil, []string{"198.51.100.0/24", "0.0.0.0/1"}, true, nil},
		{"both", []string{"192.0.2.0/24"}, []string{"198.51.100.0/24"}, true, []string{"exclude and include: set one or the other"}},
		{"garbage", []string{"192.0.2.0", "web", "::ffff:192.0.2.0/120", "fe80::/64%eth0"}, nil, true,
			[]string{`exclude "192.0.2.0": want`, `exclude "web": want`, `exclude "::ffff:192.0.2.0/120": want`, `exclude "fe80::/64%eth0": want`}},
		{"host bits", nil, []string{"192.0.2.1/24"}, true, []string{`include "192.0.2.1/24": has address bits beyond its length: did you mean 192.0.2.0/24?`}},
		{"everything", []string{"0.0.0.0/0", "128.0.0.0/1"}, nil, true, []string{`exclude "0.0.0.0/0": that takes`, `exclude "128.0.0.0/1": that takes`}},
		{"include everything", nil, []string{"::/0"}, true, []string{`include "::/0": that is everything`}},
		{"the tunnel's own", []string{"10.99.0.0/16", "fd6d:7670:6e00::/48"}, nil, true,
			[]string{`exclude "10.99.0.0/16": overlaps the tunnel's own addresses (10.99.0.1/32)`, `(10.99.0.2/32)`, `exclude "fd6d:7670:6e00::/48": overlaps the tunnel's own addresses (fd6d:7670:6e00::2/128)`}},
		{"overlap", []string{"192.0.2.0/24", "192.0.2.128/25"}, nil, true, []string{`exclude "192.0.2.0/24" and "192.0.2.128/25" overlap`}},
		{"no route_all", []string{"192.0.2.0/24"}, nil, false, []string{"needs tun.route_all = true"}},
		{"domains", nil, nil, true, nil},
		{"bad domains", nil, nil, true, []string{`exclude_domains: not domain names: "bad name", "."`}},
		{"domains and include", nil, []string{"192.0.2.0/24"}, true, []string{"exclude_domains and include"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Exclude, c.Include, c.TUN.RouteAll = tc.exclude, tc.include, tc.routeAll
			switch tc.name {
			case "domains", "domains and include":
				c.ExcludeDomains = []string{"bank.example", "game.test"}
			case "bad domains":
				c.ExcludeDomains = []string{"bank.example", "bad name", "."}
			}
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				ex, in := c.split()
				if len(ex) != len(tc.exclude) || len(in) != len(tc.include) {
					t.Fatalf("split() = %v, %v", ex, in)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSplitFromTOML(t *testing.T) {
	c := DefaultConfig()
	if _, err := toml.Decode(`exclude = ["192.0.2.0/24"]`, &c); err != nil {
		t.Fatal(err)
	}
	ex, in := c.split()
	if !reflect.DeepEqual(ex, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}) || len(in) != 0 {
		t.Fatalf("split() = %v, %v", ex, in)
	}
}
