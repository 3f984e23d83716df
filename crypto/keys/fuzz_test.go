package keys

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func fuzzSeedKeys() []string {
	return []string{
		base64.StdEncoding.EncodeToString(make([]byte, 32)),
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Sp\njqqbTmo=",
		"",
	}
}

// checkParsed holds parsers to the promise that a key has exactly one spelling.
func checkParsed(t *testing.T, s, got string, err error) {
	if err != nil {
		return
	}
	if got != s {
		t.Fatalf("parsed %q, which re-encodes as %q", s, got)
	}
	if len(s) != 44 || strings.ContainsAny(s, " \t\r\n") {
		t.Fatalf("accepted %q", s)
	}
}

func FuzzParseIdentityPublic(f *testing.F) {
	for _, s := range fuzzSeedKeys() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseIdentityPublic(s)
		checkParsed(t, s, p.String(), err)
		var q IdentityPublic
		if err2 := q.UnmarshalText([]byte(s)); (err == nil) != (err2 == nil) || q != p {
			t.Fatalf("UnmarshalText disagrees with ParseIdentityPublic on %q", s)
		}
		if err == nil {
			// Any key must be usable in Verify without panicking.
			p.Verify([]byte(s), []byte(s))
		}
	})
}

func FuzzParseStaticPublic(f *testing.F) {
	for _, s := range fuzzSeedKeys() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseStaticPublic(s)
		checkParsed(t, s, p.String(), err)
		var q StaticPublic
		if err2 := q.UnmarshalText([]byte(s)); (err == nil) != (err2 == nil) || q != p {
			t.Fatalf("UnmarshalText disagrees with ParseStaticPublic on %q", s)
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	key := bytes.Repeat([]byte{0x5a}, 32)
	f.Add(formatKeyFile(identityKind, key))
	f.Add(formatKeyFile(staticKind, key))
	f.Add([]byte("# c\r\n\n  meshvpn-identity-v1\t" + base64.StdEncoding.EncodeToString(key) + "  \n# end"))
	f.Add([]byte("meshvpn-static-v1 AAAA\nmeshvpn-static-v1 AAAA\n"))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		found := 0
		for _, kind := range keyKinds {
			got, err := parseKeyFile(data, kind.label)
			if err != nil {
				continue
			}
			found++
			if len(got) != 32 {
				t.Fatalf("%s: parsed a %d-byte key", kind.name, len(got))
			}
			if len(data) > maxKeyFileSize {
				t.Fatalf("%s: parsed a %d-byte file", kind.name, len(data))
			}
			again, err := parseKeyFile(formatKeyFile(kind, got), kind.label)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("%s: key %x does not survive format and parse: %x, %v", kind.name, got, again, err)
			}
		}
		if found > 1 {
			t.Fatalf("file parsed as more than one kind of key: %q", data)
		}
	})
}
