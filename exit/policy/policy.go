package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Config is what an operator sets: the rules, and the flags that lift built-in protections.
type Config struct {
	// Rules is the operator's policy text (see the package documentation). Empty rejects everything.
	Rules string
	// AllowPrivate lifts the protection of private networks: RFC 1918, IPv6 ULA, local-use NAT64 and
	// CGNAT space. For exits that serve a private network on purpose.
	AllowPrivate bool
	// AllowLocal lifts the protection of the exit host itself: loopback and the Own addresses.
	//
	// Link-local, cloud metadata, multicast and reserved space stay refused whatever the flags say:
	// link-local leads to the exit's own link and to the cloud services that trust any caller from
	// the instance, and the others never name one host on the internet.
	AllowLocal bool
	// Own lists the exit's own addresses, public ones included: a flow to them would reach the
	// exit's services as a local user. They change at runtime; see Policy.SetOwn.
	Own []netip.Addr
	// Directory lists the network's directory authorities (their HTTP address and port, from the
	// genesis file). TCP to exactly these is forwarded whatever the rules say, and even when they are
	// in a private network (a test network's are): clients refresh their directory through their
	// circuits, so that no authority learns who they are, and an exit that refused would cut them
	// off from the network's news. Loopback, the exit's own addresses and the protections that are
	// never lifted still apply.
	Directory []netip.AddrPort
}

// Policy decides, for each new flow at an exit, whether to forward it. It is safe for concurrent use:
// everything but the own addresses is fixed at New, and those are swapped whole by SetOwn. The zero
// Policy rejects everything; use New or Default.
type Policy struct {
	rules        []Rule
	compiled     []compiledRule // rules, in the form Decide reads
	allowPrivate bool
	allowLocal   bool
	directory    []netip.AddrPort // normalized
	own          atomic.Pointer[[]netip.Addr]
}

// Decision is Decide's answer.
type Decision struct {
	// Allow reports whether the flow may be forwarded.
	Allow bool
	// Reason says why; Allowed or Directory exactly when Allow is true.
	Reason Reason
}

// New builds a Policy from cfg, reporting every problem in it at once.
func New(cfg Config) (*Policy, error) {
	var errs []error
	rules, err := Parse(cfg.Rules)
	if err != nil {
		errs = append(errs, err)
	}
	for i, a := range cfg.Own {
		if !a.IsValid() {
			errs = append(errs, fmt.Errorf("policy: own address %d is not an address", i))
		}
	}
	for i, a := range cfg.Directory {
		if !a.IsValid() || a.Port() == 0 {
			errs = append(errs, fmt.Errorf("policy: directory authority %d (%v) is not an address and port", i, a))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Policy{rules: rules, allowPrivate: cfg.AllowPrivate, allowLocal: cfg.AllowLocal}
	for _, a := range cfg.Directory {
		p.directory = append(p.directory, netip.AddrPortFrom(normalize(a.Addr()), a.Port()))
	}
	p.compiled = make([]compiledRule, len(rules))
	for i := range rules {
		p.compiled[i] = compile(&rules[i])
	}
	p.SetOwn(cfg.Own)
	return p, nil
}

// Default returns the policy of a plain exit: every destination and port the built-in protections
// leave, which is the public internet.
func Default() *Policy {
	p, err := New(Config{Rules: "accept *:*"})
	if err != nil {
		panic(err) // the rule text above is constant
	}
	return p
}

// SetOwn replaces the exit's own addresses, for when its interfaces change. Invalid addresses are
// skipped. Decide calls running at the same time see either the old list or the new one.
func (p *Policy) SetOwn(addrs []netip.Addr) {
	own := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			own = append(own, normalize(a))
		}
	}
	p.own.Store(&own)
}

// Decide reports whether a new flow to dst with the given protocol and destination port may leave
// the exit. port is ignored for protocols without ports. It does not allocate: exits call it for
// every new flow.
func (p *Policy) Decide(dst netip.Addr, proto Proto, port uint16) Decision {
	dst = normalize(dst)
	if !dst.IsValid() {
		return Decision{Reason: Reserved}
	}
	is4, bits := dst.Is4(), bitsOf(dst)
	table := protected6
	if is4 {
		table = protected4
	}
	directory := proto == ProtoTCP && p.isDirectory(dst, port)
	if r, ok := p.protected(table, bits, is4, directory); ok {
		return Decision{Reason: r}
	}
	if v4, ok := embedded6to4(dst); ok {
		if r, ok := p.protected(protected4, bitsOf(v4), true, false); ok {
			return Decision{Reason: r}
		}
	}
	if !p.allowLocal && p.isOwn(dst) {
		return Decision{Reason: Own}
	}
	if directory {
		return Decision{Allow: true, Reason: Directory}
	}
	for i := range p.compiled {
		if p.compiled[i].matches(bits, is4, proto, port) {
			if p.compiled[i].accept {
				return Decision{Allow: true, Reason: Allowed}
			}
			return Decision{Reason: RuleReject}
		}
	}
	return Decision{Reason: DefaultReject}
}

// protected returns the reason a built-in protection of table refuses the address, if one does and
// no flag lifts it.
func (p *Policy) protected(table []protection, bits addrBits, is4, directory bool) (Reason, bool) {
	for i := range table {
		if table[i].prefix.contains(bits, is4) {
			if !p.lifted(table[i].reason) && !(directory && liftedForDirectory(table[i].reason)) {
				return table[i].reason, true
			}
			break
		}
	}
	return 0, false
}

// DecideIPv6 is Decide for a flow that an IPv6 packet carries: an IPv4-mapped or IPv4-compatible
// destination, which Decide judges as the IPv4 address inside, names no IPv6 host and is Reserved.
func (p *Policy) DecideIPv6(dst netip.Addr, proto Proto, port uint16) Decision {
	if dst.Is4() || dst.Is4In6() {
		return Decision{Reason: Reserved}
	}
	return p.Decide(dst, proto, port)
}

func (p *Policy) lifted(r Reason) bool {
	switch r {
	case Private, CGNAT:
		return p.allowPrivate
	case Loopback, Own:
		return p.allowLocal
	}
	return false
}

// liftedForDirectory reports whether a protection gives way for a directory authority: private
// networks do (an authority may live in one the network's operators share), the exit host itself
// and the never-lifted ones do not.
func liftedForDirectory(r Reason) bool { return r == Private || r == CGNAT }

func (p *Policy) isDirectory(dst netip.Addr, port uint16) bool {
	for _, a := range p.directory {
		if a.Port() == port && a.Addr() == dst {
			return true
		}
	}
	return false
}

func (p *Policy) isOwn(dst netip.Addr) bool {
	own := p.own.Load()
	if own == nil {
		return false
	}
	for _, a := range *own {
		if a == dst {
			return true
		}
	}
	return false
}

// String returns the operator rules in canonical form, one per line; Parse reads it back to the same
// rules. The flags and own addresses are not part of it.
func (p *Policy) String() string {
	var b strings.Builder
	for i := range p.rules {
		if i > 0 {
			b.WriteByte('\n')
		}
		p.rules[i].appendTo(&b)
	}
	return b.String()
}
