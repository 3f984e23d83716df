package relaylist

import (
	"crypto/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/core/relay"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/exit/policy"
)

func entry(t testing.TB, name, addr string, exit bool) Entry {
	t.Helper()
	id, _ := keys.GenerateIdentity(rand.Reader)
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	e := Entry{Name: name, Exit: exit, Info: relay.Info{
		Identity: id.Public(), LinkKey: lk.Public(), Onion: ok.Public(), Addr: netip.MustParseAddrPort(addr),
	}}
	if exit {
		e.ExitPorts = policy.Default().Summary()
	}
	return e
}

func TestRoundTrip(t *testing.T) {
	in := []Entry{entry(t, "r1", "10.240.0.11:7000", false), entry(t, "x1", "[2001:db8::1]:7000", true)}
	text, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the list:\n%+v\n%+v", in, out)
	}
	if ex := Exits(out); len(ex) != 1 || ex[0].Name != "x1" {
		t.Fatalf("Exits: %+v", ex)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	good := entry(t, "r1", "10.240.0.11:7000", false)
	text, _ := Encode([]Entry{good, good})
	bad := string(text) + `
[[relay]]
name = "bad name!"
address = "0.0.0.0:7000"
identity = "nope"
link_key = ""
onion_key = "x"
exit_ports = "tcp=80 udp=none"
colour = "red"
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("a broken list was accepted")
	}
	for _, want := range []string{"used twice", "identity listed twice", "bad name!", "not a relay's address",
		"identity:", "link_key:", "onion_key:", "exit_ports given", "unknown key relay.colour"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestLimits(t *testing.T) {
	if _, err := Parse(make([]byte, MaxFileSize+1)); err == nil {
		t.Fatal("an oversized file was read")
	}
	if _, err := Parse([]byte("[[relay]]\n[[relay]]\n" + strings.Repeat("[[relay]]\n", MaxRelays))); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many relays: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	text, _ := Encode([]Entry{entry(f, "r1", "10.240.0.11:7000", false), entry(f, "x1", "10.240.0.21:7000", true)})
	f.Add(text)
	f.Add([]byte("[[relay]]\nname = 1\n"))
	f.Add([]byte("relay = 3"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Encode(es)
		if err != nil {
			t.Fatal(err)
		}
		es2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded list refused: %v", err)
		}
		if !reflect.DeepEqual(es, es2) {
			t.Fatal("re-encoding changed the list")
		}
	})
}
