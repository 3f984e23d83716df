package relay

import (
	"net/netip"
	"time"

	"github.com/meshvpn/meshvpn/core/whois"
	"github.com/meshvpn/meshvpn/crypto/keys"
)

// whoisRate bounds the whois answers a relay sends per second: answers are shorter than requests, but
// a relay should not be a reflector at any rate a spoofer likes.
const whoisRate = 1000

// onWhois answers the whois questions among the datagrams of the relay's socket that are not link
// packets (link.Node.HandleOther). It reports whether the datagram was one: the others go to the
// socket's next handler (a STUN prober), and those that none takes are the link layer's garbage
// (link.Stats.DropOther).
func (r *Relay) onWhois(pkt []byte, from netip.AddrPort) bool {
	if !whois.IsWhois(pkt) {
		return false
	}
	now := time.Now().Unix()
	r.whoisMu.Lock()
	if r.whoisSecond != now {
		r.whoisSecond, r.whoisCount = now, 0
	}
	r.whoisCount++
	over := r.whoisCount > whoisRate
	r.whoisMu.Unlock()
	if over {
		r.stats.whoisLimited.Add(1)
		return true
	}
	var resp []byte
	var err error
	if whois.IsRegisteredRequest(pkt) {
		resp, err = whois.AnswerRegistered(pkt, r.registered())
	} else {
		resp, err = whois.Answer(pkt, r.cfg.NetworkID, r.cfg.Identity.Public())
	}
	if err != nil {
		r.stats.malformed.Add(1)
		return true
	}
	r.stats.whois.Add(1) // before the answer leaves, so that whoever reads it sees it counted
	_ = r.node.WriteTo(resp, from)
	return true
}

// registered lists the relays registered with this relay as a rendezvous: those whose tag is an
// identity key (clients do not register).
func (r *Relay) registered() []whois.Registration {
	var out []whois.Registration
	for _, reg := range r.node.Registered() {
		if len(reg.Tag) != len(keys.IdentityPublic{}) {
			continue
		}
		var id keys.IdentityPublic
		copy(id[:], reg.Tag)
		out = append(out, whois.Registration{Identity: id, Addr: reg.Addr})
	}
	return out
}
