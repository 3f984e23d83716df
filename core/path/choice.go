package path

import (
	"errors"
	"fmt"
	"strconv"
)

// ExitMode is how the user wants the exit chosen.
type ExitMode uint8

// The exit modes. The zero ExitMode is Auto.
const (
	Auto    ExitMode = iota // by measured bandwidth
	Country                 // in the country Value names (ISO 3166-1 alpha-2, for example "DE"), by bandwidth
	Region                  // in the region Value names, by bandwidth
	Random                  // uniformly at random
	Named                   // the one relay Value names, by identity (base64) or by name
)

var modeNames = []string{"auto", "country", "region", "random", "named"}

// String returns the mode's lower-case name, for example "country".
func (m ExitMode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "ExitMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseExitMode returns the mode String names.
func ParseExitMode(s string) (ExitMode, error) {
	for i, name := range modeNames {
		if s == name {
			return ExitMode(i), nil
		}
	}
	return 0, fmt.Errorf("path: unknown exit mode %q (want auto, country, region, random or named)", s)
}

// Proto is the transport protocol the exit must carry.
type Proto uint8

// The protocols. The zero Proto is TCP.
const (
	TCP Proto = iota
	UDP
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "Proto(" + strconv.Itoa(int(p)) + ")"
}

// ExitChoice is what the user asked of the exit. The zero ExitChoice is Auto for any TCP port.
type ExitChoice struct {
	Mode ExitMode
	// Value is the country, region or relay for Country, Region and Named; empty for the others.
	Value string
	Proto Proto
	// Port is the destination port the exit must allow; 0 asks only that it allow some port of Proto.
	Port uint16
	// IPv6 asks for an exit that carries IPv6 as well.
	IPv6 bool
}

// String describes the choice, for example "country DE, tcp/443".
func (c ExitChoice) String() string {
	if c.Value == "" {
		return c.Mode.String() + ", " + c.port()
	}
	return c.Mode.String() + " " + c.Value + ", " + c.port()
}

// port names the protocol and port, as in "tcp/25" or "tcp (any port)".
func (c ExitChoice) port() string {
	s := c.Proto.String() + "/" + strconv.Itoa(int(c.Port))
	if c.Port == 0 {
		s = c.Proto.String() + " (any port)"
	}
	if c.IPv6 {
		s += " over IPv6"
	}
	return s
}

// check returns every problem with the choice at once.
func (c ExitChoice) check() error {
	var errs []error
	switch c.Mode {
	case Auto, Random:
		if c.Value != "" {
			errs = append(errs, fmt.Errorf("exit mode %s takes no value (got %q)", c.Mode, c.Value))
		}
	case Country, Region, Named:
		if c.Value == "" {
			errs = append(errs, fmt.Errorf("exit mode %s needs a value", c.Mode))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown exit mode %d", c.Mode))
	}
	if c.Proto != TCP && c.Proto != UDP {
		errs = append(errs, fmt.Errorf("unknown protocol %d", c.Proto))
	}
	if len(errs) > 0 {
		return fmt.Errorf("path: exit choice: %w", errors.Join(errs...))
	}
	return nil
}

// allows reports whether the exit's summary allows the choice's protocol and port.
func (c ExitChoice) allows(n *node) bool {
	sum := n.Relay.Exit
	switch {
	case c.IPv6 && !n.Relay.IPv6:
		return false
	case c.Proto == TCP && c.Port == 0:
		return len(sum.TCP) > 0
	case c.Proto == UDP && c.Port == 0:
		return len(sum.UDP) > 0
	case c.Proto == TCP:
		return sum.AllowsTCP(c.Port)
	default:
		return sum.AllowsUDP(c.Port)
	}
}
