package genesis

import (
	"bytes"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

func authority(t testing.TB, seed byte) keys.IdentityPublic {
	t.Helper()
	id, err := keys.GenerateIdentity(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return id.Public()
}

func example(t testing.TB) *Genesis {
	id, err := GenerateNetworkID(bytes.NewReader(bytes.Repeat([]byte{0x5a}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return &Genesis{
		Name:      "testnet",
		NetworkID: id,
		Authorities: []Authority{
			{Identity: authority(t, 1), URL: "https://a1.example.net/directory", Name: "a1"},
			{Identity: authority(t, 2), URL: "http://198.51.100.2:8080/", Name: "a2"},
			{Identity: authority(t, 3), URL: "http://[2001:db8::3]/"},
		},
		Threshold: 2,
		Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:6881"), netip.MustParseAddrPort("[2001:db8::1]:6881")},
		STUN:      []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")},
	}
}

func TestRoundTrip(t *testing.T) {
	g := example(t)
	b, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("parsed %+v\nwant %+v", got, g)
	}
	if again, _ := got.Encode(); !bytes.Equal(again, b) {
		t.Fatal("re-encodes differently")
	}
	if k := got.AuthorityKeys(); len(k) != 3 || k[2] != authority(t, 3) {
		t.Fatal(k)
	}
	g.STUN = nil
	if b, err = g.Encode(); err != nil || bytes.Contains(b, []byte("stun")) {
		t.Fatalf("%v\n%s", err, b)
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
}

func TestThreshold(t *testing.T) {
	// t is the least threshold allowed for n authorities.
	for _, c := range []struct{ n, t int }{{1, 1}, {2, 1}, {3, 2}, {4, 3}, {5, 3}, {32, 17}} {
		for _, th := range []int{c.t - 1, c.t, c.n, c.n + 1} {
			g := example(t)
			g.Authorities = nil
			for i := range c.n {
				g.Authorities = append(g.Authorities, Authority{Identity: authority(t, byte(i+1)),
					URL: "http://a" + strconv.Itoa(i) + ".example/"})
			}
			g.Threshold = th
			err := g.Validate()
			if ok := th >= c.t && th <= c.n; ok != (err == nil) {
				t.Errorf("%d of %d: %v", th, c.n, err)
			}
		}
	}
}

func TestGenerateNetworkID(t *testing.T) {
	a, err := GenerateNetworkID(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil || a != [32]byte(bytes.Repeat([]byte{1}, 32)) {
		t.Fatal(a, err)
	}
	if _, err := GenerateNetworkID(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("short read accepted")
	}
	if _, err := GenerateNetworkID(bytes.NewReader(make([]byte, 32))); err == nil {
		t.Fatal("zero id accepted")
	}
}

// file returns the example's text with the line beginning with prefix replaced by repl (removed if
// repl is empty).
func file(t *testing.T, prefix, repl string) []byte {
	b, err := example(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(l, prefix) && prefix != "" {
			if repl != "" {
				out = append(out, repl)
			}
			prefix = ""
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, ""))
}

func TestParseRefusesWhatEncodeNeverWrites(t *testing.T) {
	good, _ := example(t).Encode()
	key := authority(t, 1).String()
	for name, b := range map[string][]byte{
		"CRLF":             bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")),
		"no final newline": good[:len(good)-1],
		"blank line":       file(t, "threshold", "threshold 2\n\n"),
		"trailing space":   file(t, "threshold", "threshold 2 \n"),
		"double space":     file(t, "threshold", "threshold  2\n"),
		"comment":          file(t, "threshold", "# hello\nthreshold 2\n"),
		"threshold 02":     file(t, "threshold", "threshold 02\n"),
		"upper-case hex":   file(t, "network-id", "network-id "+strings.Repeat("5A", 32)+"\n"),
		"short id":         file(t, "network-id", "network-id 5a5a\n"),
		"second name":      file(t, "name", "name a\nname b\n"),
		"out of order":     append(file(t, "name", ""), "name testnet\n"...),
		"IPv6 upper case":  file(t, "bootstrap", "bootstrap [2001:DB8::9]:6881\n"),
		"IPv4 in IPv6":     file(t, "bootstrap", "bootstrap [::ffff:198.51.100.9]:6881\n"),
		"URL upper scheme": file(t, "authority", "authority "+key+" HTTP://a1.example.net/\n"),
		"URL with user":    file(t, "authority", "authority "+key+" http://u@a1.example.net/\n"),
		"URL with query":   file(t, "authority", "authority "+key+" http://a1.example.net/?x=1\n"),
		"URL bare ?":       file(t, "authority", "authority "+key+" http://a1.example.net/?\n"),
		"ftp URL":          file(t, "authority", "authority "+key+" ftp://a1.example.net/\n"),
		"key not base64":   file(t, "authority", "authority AAAA http://a1.example.net/\n"),
		"four values":      file(t, "authority", "authority "+key+" http://a1.example.net/ a1 x\n"),
		"unknown keyword":  file(t, "stun", "relay 198.51.100.1:3478\n"),
		"non-ASCII name":   file(t, "name", "name tëst\n"),
		"header":           append([]byte("meshvpn-genesis-v2\n"), good[len(Header)+1:]...),
		"too large":        append(bytes.Clone(good), bytes.Repeat([]byte("stun 198.51.100.1:1\n"), MaxSize/20)...),
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted\n%s", name, b)
		}
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	b := []byte(Header + "\n" +
		"name bad name\n" +
		"network-id " + strings.Repeat("0", 64) + "\n" +
		"threshold 1\n" +
		"authority " + authority(t, 1).String() + " http://a.example/\n" +
		"authority " + authority(t, 1).String() + " http://a.example/\n" +
		"authority " + authority(t, 3).String() + " http://c.example/ c\n" +
		"bootstrap 0.0.0.0:1\n" +
		"stun 198.51.100.1:0\n" +
		"bootstrap 198.51.100.1:1\n" +
		"color blue\n")
	_, err := Parse(b)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"line 2: name: 2 values", "network-id: missing or zero", "threshold 1 of 3 authorities: want 2 to 3",
		"identity " + authority(t, 1).String() + " listed twice", "url http://a.example/ listed twice",
		"bootstrap 0.0.0.0:1: 0.0.0.0 is unspecified", "stun 198.51.100.1:0: 198.51.100.1:0 has port 0",
		"line 10: bootstrap after stun", `line 11: unknown keyword "color"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
}
