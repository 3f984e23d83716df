package genesis

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshvpn/meshvpn/crypto/keys"
)

// Header is the first line of every genesis file; the version is part of it.
const Header = "meshvpn-genesis-v1"

// The lines after the header, in the order they must appear.
var keywords = []string{"name", "network-id", "threshold", "authority", "bootstrap", "stun"}

// repeated are the keywords that may have more than one line.
var repeated = map[string]bool{"authority": true, "bootstrap": true, "stun": true}

// Encode returns g's one text form, for example:
//
//	meshvpn-genesis-v1
//	name testnet
//	network-id 0f1e…(64 hex digits)
//	threshold 2
//	authority <identity key, base64> https://a1.example.net/directory a1
//	authority <identity key, base64> http://198.51.100.2:8080/ a2
//	authority <identity key, base64> http://[2001:db8::3]/
//	bootstrap 198.51.100.1:6881
//	stun 198.51.100.1:3478
//
// One line each for name, network-id and threshold; one per authority (its name, optional, last), per
// bootstrap node and per STUN server, in this order. Single spaces, no comments, blank lines or
// trailing space, LF line ends. It returns Validate's error if g is not valid.
func (g *Genesis) Encode() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(fields ...string) {
		b.WriteString(strings.Join(fields, " "))
		b.WriteByte('\n')
	}
	line(Header)
	line("name", g.Name)
	line("network-id", hex.EncodeToString(g.NetworkID[:]))
	line("threshold", strconv.Itoa(g.Threshold))
	for _, a := range g.Authorities {
		if a.Name == "" {
			line("authority", a.Identity.String(), a.URL)
		} else {
			line("authority", a.Identity.String(), a.URL, a.Name)
		}
	}
	for _, a := range g.Bootstrap {
		line("bootstrap", a.String())
	}
	for _, a := range g.STUN {
		line("stun", a.String())
	}
	return b.Bytes(), nil
}

// Parse reads a genesis file. It accepts only what Encode writes, so every copy of a network's file
// is the same bytes, and reports every problem in the file at once.
func Parse(data []byte) (*Genesis, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("genesis: %d bytes, more than %d", len(data), MaxSize)
	}
	text, ok := bytes.CutSuffix(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("genesis: the file does not end with a newline")
	}
	lines := strings.Split(string(text), "\n")
	if lines[0] != Header {
		return nil, fmt.Errorf("genesis: first line %.40q, want %q", lines[0], Header)
	}
	g := &Genesis{}
	var errs []error
	bad := func(n int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...)))
	}
	rank, seen := 0, map[string]bool{}
	for i, l := range lines[1:] {
		n := i + 2
		if c := strings.IndexFunc(l, func(r rune) bool { return r < 0x20 || r > 0x7e }); c >= 0 {
			bad(n, "byte %q at column %d: only printable ASCII, single spaces and LF line ends", l[c], c+1)
			continue
		}
		f := strings.Split(l, " ")
		if slices.Contains(f, "") {
			bad(n, "empty line or extra space")
			continue
		}
		key, args := f[0], f[1:]
		r := slices.Index(keywords, key)
		switch {
		case r < 0:
			bad(n, "unknown keyword %q", key)
			continue
		case r < rank:
			bad(n, "%s after %s: the order is %s", key, keywords[rank], strings.Join(keywords, ", "))
		case seen[key] && !repeated[key]:
			bad(n, "a second %s line", key)
			continue
		}
		rank = max(rank, r)
		seen[key] = true
		lo, hi, want := 1, 1, "1"
		if key == "authority" {
			lo, hi, want = 2, 3, "2 or 3" // identity, URL, optional name
		}
		if len(args) < lo || len(args) > hi {
			bad(n, "%s: %d values, want %s", key, len(args), want)
			continue
		}
		if err := g.set(key, args); err != nil {
			bad(n, "%s: %v", key, err)
		}
	}
	errs = append(errs, g.problems()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("genesis: %w", errors.Join(errs...))
	}
	return g, nil
}

// set reads one line's values into g. Values whose text is not their canonical form are refused here;
// rules on the values themselves are Validate's.
func (g *Genesis) set(key string, args []string) error {
	switch key {
	case "name":
		g.Name = args[0]
	case "network-id":
		b, err := hex.DecodeString(args[0])
		if err != nil || len(b) != 32 || hex.EncodeToString(b) != args[0] {
			return errors.New("want 64 lower-case hex digits")
		}
		g.NetworkID = [32]byte(b)
	case "threshold":
		t, err := strconv.Atoi(args[0])
		if err != nil || strconv.Itoa(t) != args[0] || t < 0 || t > MaxAuthorities {
			return fmt.Errorf("%q is not a number from 0 to %d", args[0], MaxAuthorities)
		}
		g.Threshold = t
	case "authority":
		id, err := keys.ParseIdentityPublic(args[0])
		if err != nil {
			return err
		}
		a := Authority{Identity: id, URL: args[1]}
		if len(args) == 3 {
			a.Name = args[2]
		}
		g.Authorities = append(g.Authorities, a)
	case "bootstrap", "stun":
		a, err := netip.ParseAddrPort(args[0])
		if err != nil {
			return err
		}
		if a.String() != args[0] {
			return fmt.Errorf("%q is not in canonical form; write %s", args[0], a)
		}
		if key == "stun" {
			g.STUN = append(g.STUN, a)
		} else {
			g.Bootstrap = append(g.Bootstrap, a)
		}
	}
	return nil
}
