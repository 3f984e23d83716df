package testnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// WebName is a name only the testnet's resolver knows: WebAddr (and WebAddr6).
const WebName = "web.meshvpn.test"

// ResolverAddr is the internet's DNS resolver, in the web server's namespace: the exits' resolv.conf
// names it, and it knows WebName.
const ResolverAddr = WebAddr

// clientLANResolver is the resolver the client's own resolv.conf names before the client starts (r1's
// address: on the client's link, so that a query leaked to it would show on the client's outer
// interface; nothing answers there).
const clientLANResolver = "10.240.0.11"

// clientResolvConf is the client namespace's resolv.conf before the client changes it.
const clientResolvConf = "# the testnet client's LAN resolver\nnameserver " + clientLANResolver + "\n"

// Resolver is the testnet's DNS server: it answers WebName and remembers who asked.
type Resolver struct {
	udp, tcp *dns.Server
	mu       sync.Mutex
	from     map[string]int // queries by source address
}

// Sources returns how many queries came from each source address.
func (r *Resolver) Sources() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.from))
	for k, v := range r.from {
		out[k] = v
	}
	return out
}

func startResolver(ns *namespace, ipv6 bool) (*Resolver, error) {
	r := &Resolver{from: map[string]int{}}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		if host, _, err := net.SplitHostPort(w.RemoteAddr().String()); err == nil {
			r.mu.Lock()
			r.from[host]++
			r.mu.Unlock()
		}
		a := new(dns.Msg).SetReply(q)
		a.RecursionAvailable = true
		if len(q.Question) != 1 || !strings.EqualFold(q.Question[0].Name, WebName+".") {
			a.Rcode = dns.RcodeNameError
			w.WriteMsg(a)
			return
		}
		hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 5}
		switch q.Question[0].Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			a.Answer = append(a.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(WebAddr)})
		case dns.TypeAAAA:
			if ipv6 {
				hdr.Rrtype = dns.TypeAAAA
				a.Answer = append(a.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(WebAddr6)})
			}
		}
		w.WriteMsg(a)
	})
	var pc net.PacketConn
	var ln net.Listener
	if err := ns.do(func() (err error) {
		if pc, err = net.ListenPacket("udp4", ResolverAddr+":53"); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", ResolverAddr+":53"); err != nil {
			pc.Close()
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	r.udp, r.tcp = &dns.Server{PacketConn: pc, Handler: mux}, &dns.Server{Listener: ln, Handler: mux}
	started := make(chan struct{}, 2)
	r.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	r.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go r.udp.ActivateAndServe()
	go r.tcp.ActivateAndServe()
	<-started
	<-started
	return r, nil
}

// Close stops the resolver.
func (r *Resolver) Close() {
	r.udp.Shutdown()
	r.tcp.Shutdown()
}

// etcNetns is where `ip netns exec NAME` finds the files it bind-mounts over /etc for what it runs.
const etcNetns = "/etc/netns"

// writeResolvConf gives namespace ns a resolv.conf of its own: /etc/netns/NAME/resolv.conf, which
// `ip netns exec` mounts over /etc/resolv.conf for the programs it starts there (so the client's DNS
// changes land in it, never in the host's file). namespace.remove deletes it.
func writeResolvConf(ns *namespace, content string) error {
	dir := filepath.Join(etcNetns, ns.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(content), 0o644)
}

// checkResolvConf makes sure what runs in ns sees the namespace's own resolv.conf (content), before a
// program that rewrites /etc/resolv.conf starts there.
func checkResolvConf(ns *namespace, content string) error {
	got, err := ns.exec("cat", "/etc/resolv.conf")
	if err != nil {
		return err
	}
	if got != content {
		return errors.New("ip netns exec does not mount the namespace's own resolv.conf: the client must not start (it would rewrite the host's)")
	}
	return nil
}

// ClientResolvConf returns the resolv.conf file of the client's namespace as it is now.
func (n *Net) ClientResolvConf() (string, error) {
	b, err := os.ReadFile(filepath.Join(etcNetns, n.cl.name, "resolv.conf"))
	return string(b), err
}

// ClientResolvConfBefore is the client namespace's resolv.conf before the client started.
func (n *Net) ClientResolvConfBefore() string { return clientResolvConf }
