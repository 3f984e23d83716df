package relaylist

import (
	"github.com/meshvpn/meshvpn/core/netdir"
	"reflect"
	"strings"
	"testing"
)

// TestIPv6RoundTrip: an exit that carries IPv6 says so (ipv6 = true), others write nothing, and a
// relay that is not an exit cannot say so.
func TestIPv6RoundTrip(t *testing.T) {
	x6 := entry(t, "x6", "10.240.0.21:7000", true)
	x6.IPv6 = true
	in := []netdir.Relay{x6, entry(t, "x4", "10.240.0.22:7000", true), entry(t, "r1", "10.240.0.11:7000", false)}
	text, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(text), "ipv6 = true"); n != 1 {
		t.Fatalf("%d ipv6 lines for one IPv6 exit:\n%s", n, text)
	}
	out, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the list:\n%+v\n%+v", in, out)
	}
	bad := strings.Replace(string(text), "exit = false", "exit = false\n  ipv6 = true", 1)
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "ipv6 given for a relay that is not an exit") {
		t.Fatalf("a relay with ipv6: %v\n%s", err, bad)
	}
}
