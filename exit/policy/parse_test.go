package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseForms(t *testing.T) {
	pfx := netip.MustParsePrefix
	cases := []struct {
		in   string
		want Rule
	}{
		{"accept *:*", Rule{Accept: true, Any4: true, Any6: true, PortHi: 65535}},
		{"reject *4:25", Rule{Any4: true, PortLo: 25, PortHi: 25}},
		{"accept *6:6881-6889/udp", Rule{Accept: true, Any6: true, PortLo: 6881, PortHi: 6889, Proto: ProtoUDP}},
		{"accept 1.2.3.4:80/tcp", Rule{Accept: true, Prefix: pfx("1.2.3.4/32"), PortLo: 80, PortHi: 80, Proto: ProtoTCP}},
		{"reject 10.0.0.0/8:*", Rule{Prefix: pfx("10.0.0.0/8"), PortHi: 65535}},
		{"accept 0.0.0.0/0:1-65535", Rule{Accept: true, Prefix: pfx("0.0.0.0/0"), PortLo: 1, PortHi: 65535}},
		{"accept [2001:db8::/32]:443", Rule{Accept: true, Prefix: pfx("2001:db8::/32"), PortLo: 443, PortHi: 443}},
		{"accept [2001:DB8::1]:*/icmp", Rule{Accept: true, Prefix: pfx("2001:db8::1/128"), PortHi: 65535, Proto: ProtoICMP}},
		{"  ACCEPT   *:443/TCP  ", Rule{Accept: true, Any4: true, Any6: true, PortLo: 443, PortHi: 443, Proto: ProtoTCP}},
		{"reject [::/0]:*", Rule{Prefix: pfx("::/0"), PortHi: 65535}},
		{"accept [::fffe:0:0/95]:*", Rule{Accept: true, Prefix: pfx("::fffe:0:0/95"), PortHi: 65535}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseLayout(t *testing.T) {
	text := "# a policy\n\n reject *:25 , accept *:80,accept *:443, # web\r\naccept *:*/icmp # ping\n#reject *:*\n"
	rules, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.String())
	}
	want := []string{"reject *:25", "accept *:80", "accept *:443", "accept *:*/icmp"}
	if !slices.Equal(got, want) {
		t.Fatalf("rules %q, want %q", got, want)
	}
	for _, empty := range []string{"", "\n\n", "# nothing\n  # at all", " , ,"} {
		if rules, err := Parse(empty); err != nil || len(rules) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no rules", empty, rules, err)
		}
	}
}

// syntaxErrors unpacks the errors.Join that Parse returns.
func syntaxErrors(t *testing.T, err error) []*SyntaxError {
	t.Helper()
	var out []*SyntaxError
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not a joined error", err)
	}
	for _, e := range joined.Unwrap() {
		var se *SyntaxError
		if !errors.As(e, &se) {
			t.Fatalf("error %v is not a SyntaxError", e)
		}
		out = append(out, se)
	}
	return out
}

func TestParseErrorsAllAtOnceWithLines(t *testing.T) {
	bad := []string{
		"allow *:*",
		"accept",
		"accept *:* extra",
		"accept *",
		"accept 1.2.3.4",
		"accept 2001:db8::1:80",
		"accept [2001:db8::1:80",
		"accept [2001:db8::1]80",
		"accept [1.2.3.4]:80",
		"accept 10.0.0.1/8:*",
		"accept 10.0.0.0/33:*",
		"accept 1.2.3:*",
		"accept *:0",
		"accept *:0-10",
		"accept *:70000",
		"accept *:80-79",
		"accept *:-80",
		"accept *:80-",
		"accept *:+80",
		"accept *:",
		"accept *:80/sctp",
		"accept *:80/",
		"accept *:80/icmp",
		"accept *:1-2/icmp",
		"accept [::ffff:1.2.3.4]:*",
		"accept [::ffff:0:0/96]:*",
		"accept [64:ff9b::/96]:*",
		"accept [64:ff9b::8.8.8.8]:*",
		"accept [fe80::1%eth0]:*",
		"accept *5:*",
		"accept [*]:*",
		"accept [2001:db8::]extra]:*",
	}
	// Good rules between the bad ones must not hide or shift anything.
	var b strings.Builder
	wantLines := map[int]string{}
	for i, e := range bad {
		b.WriteString("accept *:443\n")
		b.WriteString(e + " # comment\n")
		wantLines[2*i+2] = e
	}
	_, err := Parse(b.String())
	if err == nil {
		t.Fatal("no error")
	}
	errs := syntaxErrors(t, err)
	if len(errs) != len(bad) {
		t.Fatalf("%d errors for %d bad rules:\n%v", len(errs), len(bad), err)
	}
	for _, se := range errs {
		if wantLines[se.Line] != se.Entry {
			t.Errorf("line %d reported for %q, want %q", se.Line, se.Entry, wantLines[se.Line])
		}
		if !strings.Contains(se.Error(), "line ") || se.Unwrap() == nil {
			t.Errorf("error text %q", se.Error())
		}
	}
}

func TestParseErrorTwoOnOneLine(t *testing.T) {
	_, err := Parse("accept *:*\naccept *:0, reject *:x, accept *:1")
	errs := syntaxErrors(t, err)
	if len(errs) != 2 || errs[0].Line != 2 || errs[1].Line != 2 {
		t.Fatalf("errors %v", err)
	}
}

func TestHostBitsSuggestion(t *testing.T) {
	_, err := Parse("accept 10.1.2.3/8:*")
	if err == nil || !strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Fatalf("error %v does not suggest the masked prefix", err)
	}
}

func TestStringRoundTrip(t *testing.T) {
	text := `
reject  1.2.3.4/32:80-80/TCP
accept *:*/icmp
accept [2001:0db8:0000::/48]:0443
reject *4:6881-6889 , accept *6:*/udp
accept 0.0.0.0/0:1-65535
reject [::/0]:*
accept 192.0.2.0/24:*/udp
`
	want := `reject 1.2.3.4:80/tcp
accept *:*/icmp
accept [2001:db8::/48]:443
reject *4:6881-6889
accept *6:*/udp
accept 0.0.0.0/0:1-65535
reject [::/0]:*
accept 192.0.2.0/24:*/udp`
	p, err := New(Config{Rules: text})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != want {
		t.Fatalf("String:\n%s\nwant:\n%s", got, want)
	}
	again, err := Parse(p.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, p.rules) {
		t.Fatalf("round trip changed the rules:\n%v\n%v", p.rules, again)
	}
}

func TestProtoString(t *testing.T) {
	for p, want := range map[Proto]string{ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp", ProtoICMPv6: "icmp6", 47: "47"} {
		if got := p.String(); got != want {
			t.Errorf("Proto(%d).String() = %q, want %q", p, got, want)
		}
	}
}
