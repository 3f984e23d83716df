package session

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meshvpn/meshvpn/core/cell"
	exitdns "github.com/meshvpn/meshvpn/exit/dns"
	"github.com/meshvpn/meshvpn/exit/nat"
	"github.com/meshvpn/meshvpn/network/tun"
)

// oneAddress answers every question with 10.240.0.80.
type oneAddress struct{}

func (oneAddress) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	a := new(dns.Msg).SetReply(q)
	a.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 240, 0, 80)}}
	return a, nil
}

// TestQueriesToTheTunnelResolverAreAnsweredHere: a client's query to the tunnel resolver's address is
// answered by the exit's resolver through the client's circuit, and nothing of it goes into the
// exit's TUN (to the internet). Without a resolver the address is only a private one the policy refuses.
func TestQueriesToTheTunnelResolverAreAnsweredHere(t *testing.T) {
	pool, err := nat.NewPool(nat.DefaultPrefix, self)
	if err != nil {
		t.Fatal(err)
	}
	dev := tun.NewChannel(1500)
	e, err := New(Config{TUN: dev, Pool: pool, Self: self, DNS: exitdns.New(exitdns.Config{Upstream: oneAddress{}})})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := newCircuit(1)
	begin(t, e, c)
	q := new(dns.Msg).SetQuestion("web.meshvpn.test.", dns.TypeA)
	wire, _ := q.Pack()
	e.Handle(c, cell.MsgData, udp4(clientAddr, exitdns.Addr, 5353, exitdns.Port, wire))
	m := c.next(t)
	h, err := nat.ParseIPv4(m.data)
	if err != nil || m.t != cell.MsgData || h.Src != exitdns.Addr || h.SrcPort != exitdns.Port || h.Dst != clientAddr || h.DstPort != 5353 {
		t.Fatalf("answer: %v %+v %v", m.t, h, err)
	}
	a := new(dns.Msg)
	if err := a.Unpack(m.data[28:]); err != nil || a.Id != q.Id || len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "10.240.0.80" {
		t.Fatalf("answer %v %v", a, err)
	}
	select {
	case p := <-dev.Outbound:
		t.Fatalf("a query went into the exit's TUN: %x", p)
	case <-time.After(20 * time.Millisecond):
	}
	if s := e.Stats(); s.ToInternet != 0 || s.DropPolicy != 0 {
		t.Fatalf("%+v", s)
	}

	plain, _ := newEngine(t, time.Minute)
	c2 := newCircuit(2)
	begin(t, plain, c2)
	plain.Handle(c2, cell.MsgData, udp4(clientAddr, exitdns.Addr, 5353, exitdns.Port, wire))
	if h, err := nat.ParseIPv4(c2.next(t).data); err != nil || h.Proto != 1 || h.ICMPCode != nat.CodeAdminProhibited {
		t.Fatalf("without a resolver: %+v %v", h, err)
	}
}
