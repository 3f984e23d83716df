package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/meshvpn/meshvpn/exit/nat"
)

// FuzzHandle feeds any payload to the resolver as a UDP query: it never panics, never asks the exit's
// resolver about what is not one question of class IN, and whatever it sends back is a DNS answer in a
// well-formed packet from the resolver, no larger than a client without EDNS may take unless the
// query offered more.
func FuzzHandle(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("web.meshvpn.test.", dns.TypeA),
		new(dns.Msg).SetQuestion("1.0.168.192.in-addr.arpa.", dns.TypePTR),
		new(dns.Msg).SetQuestion("example.com.", dns.TypeAAAA).SetEdns0(1232, true),
		new(dns.Msg).SetAxfr("example.com."),
		new(dns.Msg).SetNotify("example.com."),
	} {
		w, _ := m.Pack()
		f.Add(w)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		up := &fakeUpstream{answer: aRecords(3)}
		r := New(Config{Upstream: up})
		out := newReplies()
		pkt, err := nat.UDPv4(nil, client, netip.AddrPortFrom(Addr, Port), payload)
		if err != nil {
			return
		}
		h, _ := nat.ParseIPv4(pkt)
		r.Handle(1, h, pkt, out.reply)
		r.Close()
		for _, q := range up.asked {
			if len(q.Question) != 1 || q.Question[0].Qclass != dns.ClassINET {
				t.Fatalf("asked upstream %v", q)
			}
		}
		for _, p := range out.pkts {
			h, err := nat.ParseIPv4(p)
			if err != nil || h.Src != Addr || h.SrcPort != Port || h.Dst != client.Addr() {
				t.Fatalf("answer packet %+v %v", h, err)
			}
			a := new(dns.Msg)
			if err := a.Unpack(p[28:]); err != nil || !a.Response {
				t.Fatalf("answer %v %v", a, err)
			}
			if len(p)-28 > MaxAnswer {
				t.Fatalf("answer of %d bytes", len(p)-28)
			}
		}
	})
}
