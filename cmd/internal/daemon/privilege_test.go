package daemon

import "testing"

func TestHasCapability(t *testing.T) {
	for _, c := range []struct {
		status string
		want   bool
	}{
		{"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n", true}, // CAP_NET_ADMIN alone
		{"CapEff:\t000001ffffffffff\n", true},                                      // root's full set
		{"CapEff:\t0000000000000400\n", false},                                     // CAP_NET_BIND_SERVICE only
		{"CapEff:\tzz\n", false},
		{"Name:\tx\n", false},
	} {
		if got := hasCapability(c.status, capNetAdmin); got != c.want {
			t.Errorf("%q: %v, want %v", c.status, got, c.want)
		}
	}
	if err := NeedNetAdmin("test", ""); err != nil {
		t.Logf("this test runs without CAP_NET_ADMIN: %v", err)
	}
}
