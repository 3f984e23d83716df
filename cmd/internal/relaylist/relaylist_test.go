package relaylist

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/exit/policy"
)

func entry(t testing.TB, name, addr string, exit bool) netdir.Relay {
	t.Helper()
	id, _ := keys.GenerateIdentity(rand.Reader)
	lk, _ := keys.GenerateStatic(rand.Reader)
	ok, _ := keys.GenerateStatic(rand.Reader)
	e := netdir.Relay{Name: name, Flags: netdir.Running,
		Identity: id.Public(), LinkKey: lk.Public(), Onion: ok.Public(), Addr: netip.MustParseAddrPort(addr),
	}
	if exit {
		e.Flags |= netdir.Exit
		e.Exit = policy.Default().Summary()
	}
	return e
}

// natted returns e behind a NAT, reached through a rendezvous at addr.
func natted(t testing.TB, e netdir.Relay, addr string) netdir.Relay {
	t.Helper()
	k, _ := keys.GenerateStatic(rand.Reader)
	e.Rendezvous = []descriptor.Rendezvous{{LinkKey: k.Public(), Addr: netip.MustParseAddrPort(addr)}}
	return e
}

func TestRoundTrip(t *testing.T) {
	in := []netdir.Relay{entry(t, "r1", "10.240.0.11:7000", false), entry(t, "x1", "[2001:db8::1]:7000", true),
		natted(t, entry(t, "n1", "10.240.0.12:7000", false), "203.0.113.9:7000"),
		natted(t, entry(t, "n2", "10.240.0.13:7000", true), "[2001:db8::9]:7000")}
	text, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `rendezvous = "` + in[2].Rendezvous[0].LinkKey.String() + `@203.0.113.9:7000"`; !strings.Contains(string(text), want) {
		t.Fatalf("no %s in\n%s", want, text)
	}
	if n := strings.Count(string(text), "rendezvous"); n != 2 {
		t.Fatalf("%d rendezvous lines for 2 relays behind a NAT:\n%s", n, text)
	}
	out, err := Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the list:\n%+v\n%+v", in, out)
	}
	if ex := Exits(out); len(ex) != 2 || ex[0].Name != "x1" || ex[1].Name != "n2" {
		t.Fatalf("Exits: %+v", ex)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	good := entry(t, "r1", "10.240.0.11:7000", false)
	text, _ := Encode([]netdir.Relay{good, good})
	bad := string(text) + `
[[relay]]
name = "bad name!"
address = "0.0.0.0:7000"
identity = "nope"
link_key = ""
onion_key = "x"
exit_ports = "tcp=80 udp=none"
colour = "red"
rendezvous = "203.0.113.9:7000"
`
	for i, rv := range []string{"!" + good.LinkKey.String()[1:] + "@203.0.113.9:7000", good.Onion.String() + "@0.0.0.0:7000",
		good.LinkKey.String() + "@203.0.113.9:7000"} {
		e := entry(t, fmt.Sprintf("n%d", i), fmt.Sprintf("10.240.1.%d:7000", i+1), false)
		if i == 2 {
			e.LinkKey = good.LinkKey
		}
		text, _ := Encode([]netdir.Relay{e})
		bad += strings.Replace(string(text), "[[relay]]\n", "[[relay]]\nrendezvous = \""+rv+"\"\n", 1)
	}
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("a broken list was accepted")
	}
	for _, want := range []string{"used twice", "identity listed twice", "bad name!", "not a relay's address",
		"identity:", "link_key:", "onion_key:", "exit_ports given", "unknown key relay.colour",
		`rendezvous "203.0.113.9:7000": want LINKKEY@IP:PORT`, "rendezvous link key:",
		"rendezvous address: 0.0.0.0:7000: not a relay's address", "rendezvous: the relay's own link key"} {
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
	text, _ := Encode([]netdir.Relay{entry(f, "r1", "10.240.0.11:7000", false), entry(f, "x1", "10.240.0.21:7000", true),
		natted(f, entry(f, "n1", "10.240.0.12:7000", false), "203.0.113.9:7000")})
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

// An exit whose entry names no exit_ports (an older list) allows every port; a list's guards are the
// relays that are not exits, or every relay when fewer than two are not.
func TestListFlags(t *testing.T) {
	x := entry(t, "x1", "10.240.0.21:7000", true)
	text, _ := Encode([]netdir.Relay{x})
	text = []byte(strings.Replace(string(text), "exit_ports", "# exit_ports", 1))
	rs, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Exit.AllowsTCP(25) || !rs[0].Exit.AllowsUDP(53) || rs[0].Flags != netdir.Running|netdir.Exit {
		t.Fatalf("exit without exit_ports: %v %v", rs[0].Exit, rs[0].Flags)
	}
	r1, r2 := entry(t, "r1", "10.240.0.11:7000", false), entry(t, "r2", "10.240.0.12:7000", false)
	for _, c := range []struct {
		relays []netdir.Relay
		guards string
	}{
		{[]netdir.Relay{r1, r2, x}, "r1 r2"},
		{[]netdir.Relay{r1, x, entry(t, "x2", "10.240.0.22:7000", true)}, "r1 x1 x2"},
	} {
		d, err := NetDir(c.relays)
		if err != nil {
			t.Fatal(err)
		}
		var guards []string
		for _, r := range d.Relays() {
			if r.Flags.Has(netdir.Guard) {
				guards = append(guards, r.Name)
			}
		}
		if strings.Join(guards, " ") != c.guards {
			t.Errorf("guards %v, want %s", guards, c.guards)
		}
	}
}
