// Package relaylist reads and writes the relay list file: the relays a client may build circuits
// through without the network's directory. Each exit node writes its own entry (relay.toml in its data
// directory, or `meshvpn-exit-node info`); a list is those entries one after another. It is only a file
// format: Parse yields netdir.Relays, and NetDir the snapshot a client selects paths over.
//
//	[[relay]]
//	name = "r1"
//	address = "198.51.100.7:7000"
//	identity = "…"   # Ed25519, base64
//	link_key = "…"   # X25519, base64
//	onion_key = "…"  # X25519, base64
//	exit = true
//	exit_ports = "tcp=80,443 udp=53"
//	ipv6 = true      # optional: the exit carries IPv6
//	rendezvous = "…@203.0.113.9:7000"  # optional, for a relay behind a NAT: X25519 link key, base64 @ address
//
// A list says nothing of what the directory measures: every relay is Running, an exit is Exit (with
// the ports exit_ports names, or every port when an older entry names none), and the relays that are
// not exits are the guards (every relay, when fewer than two are not exits). No weights: paths are
// drawn uniformly.
package relaylist

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/meshvpn/meshvpn/core/descriptor"
	"github.com/meshvpn/meshvpn/core/exitports"
	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
	"github.com/meshvpn/meshvpn/network/link"
)

// Limits the parser enforces, so that a hostile or broken file fails fast and clearly.
const (
	MaxFileSize = 4 << 20
	MaxRelays   = 10_000
	MaxNameLen  = 32
)

// file is the TOML shape of a list.
type file struct {
	Relay []entryText `toml:"relay"`
}

type entryText struct {
	Name      string `toml:"name"`
	Address   string `toml:"address"`
	Identity  string `toml:"identity"`
	LinkKey   string `toml:"link_key"`
	OnionKey  string `toml:"onion_key"`
	Exit      bool   `toml:"exit"`
	ExitPorts string `toml:"exit_ports,omitempty"`
	IPv6      bool   `toml:"ipv6,omitempty"`
	// Rendezvous is LINKKEY@IP:PORT, the link key in the base64 of link_key: "@" is not in that alphabet
	// nor in an address, so the text splits one way only.
	Rendezvous string `toml:"rendezvous,omitempty"`
}

// allPorts is what an exit whose entry names no exit_ports is taken to allow.
var allPorts = exitports.Summary{TCP: []exitports.Range{{Lo: 1, Hi: 65535}}, UDP: []exitports.Range{{Lo: 1, Hi: 65535}}}

// Parse reads a relay list, reporting every problem in it at once. The relays are Running; the exits
// Exit.
func Parse(data []byte) ([]netdir.Relay, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("relay list: %d bytes, more than %d", len(data), MaxFileSize)
	}
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("relay list: %w", err)
	}
	var errs []error
	if und := md.Undecoded(); len(und) > 0 {
		for _, k := range und {
			errs = append(errs, fmt.Errorf("unknown key %s", k))
		}
	}
	if len(f.Relay) > MaxRelays {
		return nil, fmt.Errorf("relay list: %d relays, more than %d", len(f.Relay), MaxRelays)
	}
	out := make([]netdir.Relay, 0, len(f.Relay))
	names := make(map[string]bool)
	ids := make(map[keys.IdentityPublic]bool)
	for i, t := range f.Relay {
		e, err := t.entry()
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %d (%q): %w", i+1, t.Name, err))
			continue
		}
		if names[e.Name] {
			errs = append(errs, fmt.Errorf("relay %d: name %q used twice", i+1, e.Name))
		}
		if ids[e.Identity] {
			errs = append(errs, fmt.Errorf("relay %d (%q): identity listed twice", i+1, e.Name))
		}
		names[e.Name], ids[e.Identity] = true, true
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("relay list: %w", errors.Join(errs...))
	}
	return out, nil
}

func (t entryText) entry() (netdir.Relay, error) {
	var errs []error
	e := netdir.Relay{Name: t.Name, Flags: netdir.Running, IPv6: t.IPv6}
	if t.Exit {
		e.Flags |= netdir.Exit
		e.Exit = allPorts
	}
	if err := checkName(t.Name); err != nil {
		errs = append(errs, err)
	}
	var err error
	if e.Addr, err = parseAddr(t.Address); err != nil {
		errs = append(errs, fmt.Errorf("address: %w", err))
	}
	if e.Identity, err = keys.ParseIdentityPublic(t.Identity); err != nil {
		errs = append(errs, fmt.Errorf("identity: %w", err))
	}
	if e.LinkKey, err = keys.ParseStaticPublic(t.LinkKey); err != nil {
		errs = append(errs, fmt.Errorf("link_key: %w", err))
	}
	if e.Onion, err = keys.ParseStaticPublic(t.OnionKey); err != nil {
		errs = append(errs, fmt.Errorf("onion_key: %w", err))
	}
	if t.Rendezvous != "" {
		rv, err := ParseRendezvous(t.Rendezvous)
		switch {
		case err != nil:
			errs = append(errs, err)
		case rv.Key == e.LinkKey:
			errs = append(errs, errors.New("rendezvous: the relay's own link key: a relay cannot be reached through itself"))
		default:
			e.Rendezvous = []descriptor.Rendezvous{{LinkKey: rv.Key, Addr: rv.Addr}}
		}
	}
	switch {
	case t.ExitPorts != "" && !t.Exit:
		errs = append(errs, errors.New("exit_ports given for a relay that is not an exit"))
	case t.IPv6 && !t.Exit:
		errs = append(errs, errors.New("ipv6 given for a relay that is not an exit"))
	case t.ExitPorts != "":
		if e.Exit, err = exitports.Parse(t.ExitPorts); err != nil {
			errs = append(errs, fmt.Errorf("exit_ports: %w", err))
		}
	}
	return e, errors.Join(errs...)
}

// parseAddr reads an address others connect to, in its one form: an IPv4 address written as IPv6
// becomes the IPv4 one, so that equal addresses compare equal.
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return netip.AddrPort{}, err
	case ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() || ap.Addr().Zone() != "":
		return netip.AddrPort{}, fmt.Errorf("%s: not a relay's address", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// ParseRendezvous reads LINKKEY@IP:PORT (the form relay lists and configurations name a rendezvous in). Each problem names the field, as entry's do, since they are
// listed one a line.
func ParseRendezvous(s string) (link.Rendezvous, error) {
	key, addr, ok := strings.Cut(s, "@")
	if !ok {
		return link.Rendezvous{}, fmt.Errorf("rendezvous %q: want LINKKEY@IP:PORT", s)
	}
	var rv link.Rendezvous
	var errs []error
	var err error
	if rv.Key, err = keys.ParseStaticPublic(key); err != nil {
		errs = append(errs, fmt.Errorf("rendezvous link key: %w", err))
	}
	if rv.Addr, err = parseAddr(addr); err != nil {
		errs = append(errs, fmt.Errorf("rendezvous address: %w", err))
	}
	return rv, errors.Join(errs...)
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", name, MaxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return fmt.Errorf("name %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Encode writes relays in the form Parse reads: their name, address, keys, first rendezvous, and,
// for an exit (Exit-flagged), its ports and IPv6.
func Encode(relays []netdir.Relay) ([]byte, error) {
	var f file
	for _, e := range relays {
		t := entryText{
			Name:     e.Name,
			Address:  e.Addr.String(),
			Identity: e.Identity.String(),
			LinkKey:  e.LinkKey.String(),
			OnionKey: e.Onion.String(),
			Exit:     e.Flags.Has(netdir.Exit),
		}
		if t.Exit {
			t.ExitPorts = e.Exit.String()
			t.IPv6 = e.IPv6
		}
		if len(e.Rendezvous) > 0 {
			rv := e.Rendezvous[0]
			t.Rendezvous = rv.LinkKey.String() + "@" + rv.Addr.String()
		}
		f.Relay = append(f.Relay, t)
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Exits returns the relays that are exits.
func Exits(relays []netdir.Relay) []netdir.Relay {
	var out []netdir.Relay
	for _, e := range relays {
		if e.Flags.Has(netdir.Exit) {
			out = append(out, e)
		}
	}
	return out
}

// NetDir returns the snapshot of a list's relays that a client selects paths over: the relays that are
// not exits are made guards, every relay when fewer than two are not exits (a guard and a middle that
// are not the exit are wanted).
func NetDir(relays []netdir.Relay) (*netdir.NetDir, error) {
	plain := 0
	for _, r := range relays {
		if !r.Flags.Has(netdir.Exit) {
			plain++
		}
	}
	rs := make([]netdir.Relay, len(relays))
	for i, r := range relays {
		if plain < 2 || !r.Flags.Has(netdir.Exit) {
			r.Flags |= netdir.Guard
		}
		rs[i] = r
	}
	return netdir.FromList(rs)
}
