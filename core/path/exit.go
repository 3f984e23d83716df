package path

import (
	"strings"

	"github.com/meshvpn/meshvpn/core/netdir"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// exits returns the relays that may be the exit for the choice, or an error naming the constraint
// that left none.
func (s *Selector) exits(c ExitChoice, avoid map[keys.IdentityPublic]bool) ([]*node, error) {
	if c.Mode == Named {
		return s.namedExit(c, avoid)
	}
	var listed, down, degraded, avoided, allowing, matching int
	var out []*node
	for _, n := range s.nodes {
		if !n.Flags.Has(netdir.Exit) {
			continue
		}
		listed++
		switch {
		case !n.Flags.Has(netdir.Running):
			down++
			continue
		case n.Flags.Has(netdir.Degraded):
			degraded++
			continue
		case avoid[n.Identity]:
			avoided++
			continue
		}
		allows, matches := c.allows(n), c.matches(n)
		if allows {
			allowing++
		}
		if matches {
			matching++
		}
		if allows && matches {
			out = append(out, n)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case listed == 0:
		return nil, fail(ErrNoExit, "no relay in the consensus is an exit")
	case down+degraded+avoided == listed:
		return nil, fail(ErrNoExit, "no usable exit: of %d exits, %d are down, %d degraded, %d avoided",
			listed, down, degraded, avoided)
	case allowing == 0:
		return nil, fail(ErrNoExit, "no exit allows %s", c.port())
	case matching == 0:
		return nil, fail(ErrNoExit, "no usable exit %s", c.where())
	default:
		return nil, fail(ErrNoExit, "no exit %s allows %s", c.where(), c.port())
	}
}

// matches reports whether the exit is where the choice asks for (always, for Auto and Random).
func (c ExitChoice) matches(n *node) bool {
	switch c.Mode {
	case Country:
		return strings.EqualFold(n.Country, c.Value)
	case Region:
		return strings.EqualFold(n.Region, c.Value)
	}
	return true
}

// where is the choice's filter in words: "in country DE".
func (c ExitChoice) where() string {
	return "in " + c.Mode.String() + " " + c.Value
}

// namedExit returns the one relay the choice names, if it may be the exit.
func (s *Selector) namedExit(c ExitChoice, avoid map[keys.IdentityPublic]bool) ([]*node, error) {
	n, err := s.named(c.Value)
	if err != nil {
		return nil, err
	}
	switch {
	case !n.Flags.Has(netdir.Exit):
		return nil, fail(ErrNoExit, "relay %s is not an exit", n)
	case !n.Flags.Has(netdir.Running):
		return nil, fail(ErrNoExit, "exit %s is not running", n)
	case n.Flags.Has(netdir.Degraded):
		return nil, fail(ErrNoExit, "exit %s is degraded", n)
	case avoid[n.Identity]:
		return nil, fail(ErrNoExit, "exit %s is avoided", n)
	case !c.allows(n):
		return nil, fail(ErrNoExit, "exit %s does not allow %s", n, c.port())
	}
	return []*node{n}, nil
}

// named finds a relay by identity or, when exactly one relay carries it, by name.
func (s *Selector) named(v string) (*node, error) {
	if id, err := keys.ParseIdentityPublic(v); err == nil {
		if n := s.byID[id]; n != nil {
			return n, nil
		}
		return nil, because(fail(ErrNoExit, "no relay in the consensus has identity %s", v), ErrNoSuchRelay)
	}
	switch ns := s.byName[v]; len(ns) {
	case 0:
		return nil, because(fail(ErrNoExit, "no relay in the consensus is named %q", v), ErrNoSuchRelay)
	case 1:
		return ns[0], nil
	default:
		return nil, fail(ErrNoExit,
			"%d relays claim the name %q (names are not authenticated): name the exit by its identity", len(ns), v)
	}
}

// ExitAllows reports whether the relay with identity id is an exit that allows what c asks of an
// exit (its protocol, port and address family; c's mode is not looked at).
func (s *Selector) ExitAllows(id keys.IdentityPublic, c ExitChoice) bool {
	n := s.byID[id]
	return n != nil && n.Flags.Has(netdir.Exit) && c.allows(n)
}
